"""The daemon's config file: the same clear, one-line errors as the policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_policy import run_ulm
from ulm.config import load_config
from ulm.errors import ConfigError

GOOD = """
policy = "seed"
manage = ["web*", "db?"]
[store]
url = "sqlite:////tmp/x.db"
[[hosts]]
name = "h1"
libvirt_uri = "qemu+tcp://h1/system"
[[hosts]]
name = "h2"
libvirt_uri = "qemu+tcp://h2/system"
munin = "h2:4949"
"""


def test_a_good_config(tmp_path: Path) -> None:
    path = tmp_path / "ulm.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert [h.name for h in cfg.hosts] == ["h1", "h2"]
    assert cfg.manages("web7") and cfg.manages("db1") and not cfg.manages("mail1")
    assert cfg.collect.stale_s == 3 * cfg.collect.interval_s
    (tmp_path / "mine.toml").write_text("")
    local = cfg.model_copy(update={"policy": "mine.toml"})
    assert local.policy_ref() == str(tmp_path / "mine.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "ulm.toml: config file is empty"),
        ("[store]\nurl = 3\n", "ulm.toml: store.url (line 2): Input should be a valid string"),
        (GOOD.replace('libvirt_uri = "qemu+tcp://h1/system"', 'uri = "x"'),
         "ulm.toml: hosts.0.uri (line 8): unknown key"),
        (GOOD + "[collect]\ninterval_s = -5\n",
         "ulm.toml: collect.interval_s (line 14): Input should be greater than 0"),
        (GOOD.replace('name = "h2"', 'name = "h1"'),
         "ulm.toml: Value error, host names must be unique: h1"),
        ("[store]\nurl = 'sqlite:////tmp/x.db'\n", "ulm.toml: hosts: Field required"),
        (GOOD + "[ha]\nstandby = 'yes please'\n",
         "ulm.toml: ha.standby (line 14): Input should be a valid boolean"),
        (GOOD + "[ha]\nlease_s = 2\n",
         "ulm.toml: ha.lease_s (line 14): Input should be greater than or equal to 4"),
        (GOOD + "[ha]\nlease_s = 10\npoll_s = 6\n",
         "ulm.toml: Value error, poll_s (6) must be at most half of lease_s (10)"),
        (GOOD + "[ha]\nleader = true\n", "ulm.toml: ha.leader (line 14): unknown key"),
    ],
)
def test_bad_config_names_file_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "ulm.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).replace(str(tmp_path) + "/", "").startswith(expected.split(
        "Value error, ")[0]), str(err.value)
    assert expected.split("Value error, ")[-1] in str(err.value)


def test_cli_with_a_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ulm.toml"
    path.write_text("[store]\nurl = 3\n")
    out = run_ulm("status", "--config", str(path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "store.url (line 2)" in out.stderr and "Traceback" not in out.stderr


def test_power_config_checks_and_keeps_secrets_out_of_reprs(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from ulm.power.factory import driver
    from ulm.power.redfish import RedfishPower
    base = GOOD.replace('munin = "h2:4949"', 'munin = "h2:4949"\npower = { driver = "ipmi", '
                        'address = "10.0.0.2", username = "admin", password = "Hunter2" }')
    path = tmp_path / "ulm.toml"
    path.write_text(base)
    cfg = load_config(path)
    assert "Hunter2" not in repr(cfg) and "Hunter2" not in str(cfg.model_dump())
    p = cfg.hosts[1].power
    assert p is not None and p.secret() == "Hunter2"
    assert "Hunter2" not in repr(driver(p, lambda: True))
    monkeypatch.setenv("ULM_BMC_PW", "FromEnv")
    env = p.model_copy(update={"password": None, "password_env": "ULM_BMC_PW"})
    assert env.secret() == "FromEnv"
    fish = p.model_copy(update={"driver": "redfish", "address": "https://bmc2"})
    assert isinstance(driver(fish, lambda: True), RedfishPower)
    path.write_text(base.replace(', password = "Hunter2"', ""))
    with pytest.raises(ConfigError, match="ipmi needs password_file, password_env"):
        load_config(path)
    path.write_text(base.replace('driver = "ipmi"', 'driver = "wol"'))
    with pytest.raises(ConfigError, match="wol needs mac"):
        load_config(path)
