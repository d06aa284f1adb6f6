"""`ulm.toml` values that were accepted and then ignored, misread or leaked: refused when the
file is read, with the key, the line and (for hosts) the host named, credentials blanked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_inputs import refused, ulm
from ulm.config import load_config
from ulm.errors import ConfigError

HOSTS = """
[[hosts]]
name = "h1"
libvirt_uri = "qemu+tcp://h1/system"
"""


def load(tmp: Path, text: str) -> str:
    """The one-line error for `text` as ulm.toml (the file's directory left out)."""
    path = tmp / "ulm.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value).replace(f"{tmp}/", "")


@pytest.mark.parametrize(("text", "expected"), [
    ('[collect]\nsource = "prometheus"\n' + HOSTS,
     'collect (line 1): source "prometheus" needs [collect.prometheus] with its url'),
    ('[collect.prometheus]\nurl = "http://prom:9090"\n' + HOSTS,
     '[collect.prometheus] is given but source is "libvirt"'),
    ('[collect]\nsource = "prometheus"\n[collect.prometheus]\nurl = "http://u:pw@prom:9090"\n'
     + HOSTS, "collect.prometheus.url (line 4): must not contain credentials"),
    (HOSTS.replace("qemu+tcp://h1/system", "nonsense://???"),
     "hosts.0.libvirt_uri (line 4): host h1: libvirt_uri 'nonsense://???' is not a libvirt "
     "URI: the scheme must be one of qemu, test"),
    (HOSTS.replace("qemu+tcp://h1/system", "qemu+carrier-pigeon://h1/system"),
     "hosts.0.libvirt_uri (line 4): host h1: libvirt_uri 'qemu+carrier-pigeon://h1/system' "
     "is not a libvirt URI"),
    (HOSTS.replace("qemu+tcp://h1/system", "qemu+foo://h1/system"),
     "unknown libvirt transport 'foo'"),
    (HOSTS.replace("qemu+tcp://h1/system", "qemu+tcp://h1/"), "a qemu URI ends in /system"),
    (HOSTS.replace("qemu+tcp://h1/system", "qemu+tcp://h1:99999/system"),
     "host h1: libvirt_uri 'qemu+tcp://h1:99999/system' is not a libvirt URI (Port out of"),
    (HOSTS.replace("qemu+tcp://h1/system", "qemu+tcp://bad_host!/system"),
     "'bad_host!' is not a host name or IP address"),
    (HOSTS + 'migration_uri = "tcp:/h1"\n', "hosts.0.migration_uri (line 5): host h1: "
     "migration_uri 'tcp:/h1' is not a libvirt URI"),
    ('[store]\nurl = "mysql://u@h/db"\n' + HOSTS,
     "store.url (line 2): 'mysql://u@h/db': the store is SQLite or PostgreSQL"),
    ('[store]\nurl = "sqlite://"\n' + HOSTS, "names no database file or database"),
    ('[store]\nurl = "x"\n' + HOSTS, "store.url (line 2): 'x' is not a database URL"),
    ('[collect]\ninterval_s = nan\n' + HOSTS,
     "collect.interval_s (line 2): Input should be a finite number"),
    ('[executor]\ndeadline_s = inf\n' + HOSTS,
     "executor.deadline_s (line 2): Input should be a finite number"),
    ('[executor]\nbandwidth_mib_s = 1e12\n' + HOSTS,
     "executor.bandwidth_mib_s (line 2): Input should be less than or equal to 1000000"),
    ('[executor]\nmax_concurrent = 100000\n' + HOSTS, "executor.max_concurrent (line 2)"),
    ('[collect]\nkeep_s = 1e300\n' + HOSTS, "collect.keep_s (line 2): Input should be less"),
    ('[power_models.big]\nwatts = [100, 1e9]\n' + HOSTS, "power_models.big.watts.1"),
    ('[power_models.odd]\nidle_w = 300\nmax_w = 200\n' + HOSTS,
     "idle_w (300) is above max_w (200)"),
    (HOSTS + 'munin = "h1"\n', "hosts.0.munin (line 5): host h1: munin 'h1' is not HOST:PORT"),
    (HOSTS + 'munin = "h1:99999"\n', "the port must be a number from 1 to 65535"),
    (HOSTS + 'power = { driver = "wol", mac = "52:54:00:00:00:01", broadcast = "nope" }\n',
     "broadcast 'nope' is not an IPv4 address"),
    (HOSTS + 'power = { driver = "ipmi", address = "bmc 1", username = "a", '
             'password_env = "X" }\n', "address 'bmc 1' is not a host name or IP address"),
    (HOSTS + 'power = { driver = "redfish", address = "bmc1", username = "a", '
             'password_env = "X" }\n', "address 'bmc1' is not an http(s) URL"),
])
def test_bad_values_are_refused_naming_key_and_line(tmp_path: Path, text: str,
                                                    expected: str) -> None:
    assert expected in load(tmp_path, text)


def test_good_uris_and_addresses_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ulm.toml"
    path.write_text('[store]\nurl = "postgresql+psycopg://ulm@db.example:5432/ulm"\n'
                    + "".join(f'[[hosts]]\nname = "h{i}"\nlibvirt_uri = "{uri}"\n{extra}'
                              for i, (uri, extra) in enumerate([
                                  ("qemu:///system", 'munin = "[::1]:4949"\n'),
                                  ("qemu+ssh://root@hv1.example/system?keyfile=/k", ""),
                                  ("qemu+tls://10.0.0.5:16514/system", ""),
                                  ("test:///default", 'migration_uri = "qemu+tcp://h3/system"\n'),
                              ])))
    cfg = load_config(path)
    assert cfg.hosts[0].munin == "::1:4949"  # the munin client's form
    assert [h.libvirt_uri for h in cfg.hosts][1].startswith("qemu+ssh://root@hv1")


def test_credentials_stay_out_of_errors_and_reprs(tmp_path: Path) -> None:
    bad = load(tmp_path, '[store]\nurl = "postgresql+psycopg://u:Hunter2@db:99999/x"\n' + HOSTS)
    assert "Hunter2" not in bad and "u:***@db" in bad and "port" in bad
    bad = load(tmp_path, HOSTS.replace("qemu+tcp://h1/system", "qemu+tcp://u:Hunter2@h1/"))
    assert "Hunter2" not in bad and "ends in /system" in bad
    path = tmp_path / "ulm.toml"
    path.write_text('[store]\nurl = "postgresql+psycopg://u:Hunter2@db/x"\n' + HOSTS)
    cfg = load_config(path)
    assert "Hunter2" not in repr(cfg) and "Hunter2" not in str(cfg)
    assert cfg.store.url.endswith("u:Hunter2@db/x")  # blanked only where it is shown


def test_the_cli_refuses_prometheus_without_its_table_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ulm.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/ulm.db"\n[collect]\n'
                    'source = "prometheus"\n' + HOSTS)
    refused(ulm("status", "-c", str(path)), "collect", "needs [collect.prometheus]")
    assert not (tmp_path / "ulm.db").exists()
