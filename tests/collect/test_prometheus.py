"""The Prometheus source against a real Prometheus server scraping real exporters on loopback."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest

from tests import secrets
from tests.collect.prom_fixtures import Prom, exporters, prom, start_prometheus  # noqa: F401
from ulm.collect.base import Collection
from ulm.collect.prometheus import PrometheusSettings, PrometheusSource, wait_ready

_open: list[PrometheusSource] = []


@pytest.fixture(autouse=True)
def _close_sources() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def source(url: str, **kw: object) -> PrometheusSource:
    # "ghost" maps to a lab address that no series names: nothing ever connects to it
    settings = PrometheusSettings(url=url, hosts={"h1": "127.0.0.1", "ghost": "10.77.0.9"},
                                  rate_s=5, stale_s=5, timeout_s=5, **kw)  # type: ignore[arg-type]
    _open.append(PrometheusSource(settings))
    return _open[-1]


def eventually(fn: Callable[[], Collection], ok: Callable[[Collection], bool],
               timeout: float = 40) -> Collection:
    deadline = time.monotonic() + timeout
    while True:
        col = fn()
        if ok(col) or time.monotonic() > deadline:
            return col
        time.sleep(0.5)


def _h1(col: Collection) -> object:
    return next(h for h in col.hosts if h.host == "h1")


def test_host_and_vm_figures_come_from_the_exporters(prom: Prom) -> None:  # noqa: F811
    src = source(prom.url)
    col = eventually(lambda: src.collect(time.time()),
                     lambda c: any(h.ok and h.cpu is not None for h in c.hosts) and bool(c.vms))
    h1 = next(h for h in col.hosts if h.host == "h1")
    assert h1.ok and h1.source == "prometheus"
    assert h1.cores >= 1 and h1.mem_total_mib > 100  # node-exporter's real machine figures
    assert h1.cpu is not None and 0.0 <= h1.cpu <= 1.0
    assert h1.mem_used_mib is not None and 0 < h1.mem_used_mib < h1.mem_total_mib
    (vm,) = col.vms  # libvirt's test driver runs one domain, "test": 2 vCPUs, 8 GiB
    assert (vm.vm, vm.host, vm.vcpus, vm.mem_mib) == ("test", "h1", 2, 8192.0)
    assert vm.mem_used_mib == 2048.0
    # a host with no series at all is silent, said so, and given no figure
    ghost = next(h for h in col.hosts if h.host == "ghost")
    assert not ghost.ok and "no series" in ghost.error and ghost.cpu is None


def test_a_dead_exporter_makes_the_host_stale_and_it_recovers(prom: Prom) -> None:  # noqa: F811
    src = source(prom.url)
    eventually(lambda: src.collect(time.time()), lambda c: bool(c.vms))
    prom.node.stop()
    try:
        col = eventually(lambda: src.collect(time.time()), lambda c: not c.hosts[0].ok)
        h1 = next(h for h in col.hosts if h.host == "h1")
        assert not h1.ok and "down" in h1.error and h1.cpu is None
        assert col.vms == ()  # nothing on a stale host is reported as measured
    finally:
        prom.node.start()
    col = eventually(lambda: src.collect(time.time()), lambda c: c.hosts[0].ok and bool(c.vms))
    assert next(h for h in col.hosts if h.host == "h1").ok


def test_an_unreachable_server_is_reported_without_credentials(tmp_path: Path) -> None:
    from tests.collect.prom_fixtures import free_port

    url = f"http://ulm:{secrets.TOKEN}@127.0.0.1:{free_port()}"
    col = source(url).collect(time.time())
    assert all(not h.ok for h in col.hosts)
    assert "127.0.0.1" in col.hosts[0].error and secrets.TOKEN not in col.hosts[0].error


def _tls(d: Path) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_basic_auth_over_tls(tmp_path: Path) -> None:
    cert, key = _tls(tmp_path)
    hashed = bcrypt.hashpw(secrets.STORE_PW.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = (f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
           f"basic_auth_users:\n  ulm: '{hashed}'\n")
    proc, url = start_prometheus(tmp_path, web, scheme="https")
    node, lv = exporters(tmp_path)
    node.start()
    lv.start()
    try:
        wait_ready(url, verify=ssl.create_default_context(cafile=str(cert)),
                   auth=("ulm", secrets.STORE_PW))
        good = source(url, username="ulm", password=secrets.STORE_PW, ca_file=str(cert))
        col = eventually(lambda: good.collect(time.time()), lambda c: bool(c.vms))
        assert _h1(col).ok and col.vms[0].vm == "test"  # type: ignore[attr-defined]
        wrong = source(url, username="ulm", password="wrong-password", ca_file=str(cert))
        h1 = next(h for h in wrong.collect(time.time()).hosts if h.host == "h1")
        assert not h1.ok and "401" in h1.error
        untrusted = source(url, username="ulm", password=secrets.STORE_PW)  # system CAs only
        h1 = next(h for h in untrusted.collect(time.time()).hosts if h.host == "h1")
        assert not h1.ok and "certificate" in h1.error.lower()
        assert secrets.STORE_PW not in h1.error
    finally:
        node.stop()
        lv.stop()
        proc.terminate()
        proc.wait(20)


@pytest.mark.parametrize("figure", ["host_cpu", "vm_cpu"])
def test_queries_are_configurable(prom: Prom, figure: str) -> None:  # noqa: F811
    # A query that gives every host (or VM) a known CPU figure: the source uses what it is told.
    expr = {"host_cpu": 'up{job="node"} * 0 + 0.25',
            "vm_cpu": "libvirt_domain_info_virtual_cpus * 0 + 1.5"}[figure]
    src = source(prom.url, queries={figure: expr})
    col = eventually(lambda: src.collect(time.time()),  # both exporters scraped again
                     lambda c: bool(c.vms) and c.vms[0].cpu is not None
                     and _h1(c).cpu is not None)  # type: ignore[attr-defined]
    if figure == "host_cpu":
        assert _h1(col).cpu == 0.25  # type: ignore[attr-defined]
    else:
        assert col.vms[0].cpu == 1.5


def test_the_daemon_reads_hosts_and_vms_from_prometheus(prom: Prom,  # noqa: F811
                                                        tmp_path: Path) -> None:
    import json

    src = source(prom.url)  # wait until both exporters are scraped with rates
    eventually(lambda: src.collect(time.time()),
               lambda c: bool(c.vms) and c.vms[0].cpu is not None and _h1(c).cpu is not None)  # type: ignore[attr-defined]
    cfg = tmp_path / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/ulm.db"\n'
                   f'[collect]\nsource = "prometheus"\ninterval_s = 5\n'
                   f'[collect.prometheus]\nurl = "{prom.url}"\nrate_s = 5\n'
                   '[[hosts]]\nname = "h1"\nlibvirt_uri = "test:///default"\n'
                   'prometheus = "127.0.0.1"\n')
    ulm = str(Path(sys.executable).parent / "ulm")
    run = subprocess.run([ulm, "run", "--config", str(cfg), "--once", "--mode", "observe"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = subprocess.run([ulm, "status", "--config", str(cfg), "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    snap = json.loads(out.stdout)
    (host,) = snap["hosts"]
    assert host["name"] == "h1" and host["state"] == "on" and host["cpu_history"]
    (vm,) = snap["vms"]
    assert (vm["name"], vm["host"]) == ("test", "h1")  # placed where Prometheus saw it
