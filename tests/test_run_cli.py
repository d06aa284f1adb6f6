"""`ulm run`'s options and the commands that need no hypervisor: a clear line, exit 2, nothing
started and nothing written for bad input; no libvirt needed where no hypervisor is."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.test_cli_inputs import ROOT, config, refused, ulm


def test_metrics_address_is_checked_before_anything_starts(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    for bad, why in (("notanaddr", "is not HOST:PORT"), ("127.0.0.1:99999", "1 to 65535"),
                     ("127.0.0.1:http", "1 to 65535"), ("bad host!:9180", "not a host name"),
                     ("::1:9180", "in brackets")):
        refused(ulm("run", "-c", str(cfg), "--once", "--metrics", bad), f"--metrics {bad!r}",
                why)
    assert not (tmp_path / "ulm.db").exists()


def test_a_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = ulm("run", "-c", str(cfg), "--once", "--metrics", f"127.0.0.1:{port}")
    refused(out, f"--metrics 127.0.0.1:{port}: cannot serve /metrics there",
            "Address already in use")
    assert not (tmp_path / "ulm.db").exists()  # refused before the store or libvirt


def test_log_format_and_rounds_are_checked(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    xml = ulm("run", "-c", str(cfg), "--once", "--log-format", "xml")
    assert xml.returncode == 2 and "'xml' is not one of 'text', 'json'" in xml.stderr
    assert "Traceback" not in xml.stderr
    for n in ("0", "-1"):
        out = ulm("run", "-c", str(cfg), "--rounds", n)
        assert out.returncode == 2 and "greater than or equal to 1" in out.stderr, out.stderr
    refused(ulm("run", "-c", str(cfg), "--once", "--rounds", "2"), "--once or --rounds")
    limit = ulm("plans", "-c", str(cfg), "--limit", "-1")  # SQLite's LIMIT -1: everything
    assert limit.returncode == 2 and "greater than or equal to 1" in limit.stderr
    assert not (tmp_path / "ulm.db").exists()


NO_LIBVIRT = ("import sys; sys.modules['libvirt'] = None  # import libvirt fails\n"
              "from ulm.cli import main; sys.argv = ['ulm', *sys.argv[1:]]; main()")


def without_libvirt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NO_LIBVIRT, *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_commands_without_a_hypervisor_run_without_libvirt(tmp_path: Path) -> None:
    assert without_libvirt("policy", "check", "seed").returncode == 0
    plan = without_libvirt("plan", "--snapshot", "examples/snapshots/hot-host.json",
                           "--policy", "seed")
    assert plan.returncode == 0 and "overloaded hosts 1 -> 0" in plan.stdout, plan.stderr
    assert without_libvirt("simulate", "--help").returncode == 0
    cfg = config(tmp_path)
    assert without_libvirt("store", "init", "-c", str(cfg)).returncode == 0
    assert without_libvirt("maintenance", "list", "-c", str(cfg)).returncode == 0
    daemon = without_libvirt("run", "-c", str(cfg), "--once")
    refused(daemon, "talks to libvirt", "install libvirt-python")


def test_libvirt_python_is_a_dependency_not_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("libvirt-python==") for d in project["dependencies"])
