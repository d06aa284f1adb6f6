"""The shipped systemd unit: systemd itself accepts it, and its command line is one `ulm run`
accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[1] / "src" / "ulm" / "systemd" / "ulm.service"
ULM = str(Path(sys.executable).parent / "ulm")


def _keys(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    unit = tmp_path / "ulm.service"
    # The installed path of ulm differs per machine; systemd checks that ExecStart exists.
    unit.write_text(UNIT.read_text().replace("/opt/ulm/.venv/bin/ulm", ULM))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ulm.service" not in out.stderr, out.stderr  # no warning about our unit either


def test_the_unit_is_hardened_and_reloads_with_sighup() -> None:
    keys = _keys(UNIT.read_text())
    for key, value in {"NoNewPrivileges": "true", "ProtectSystem": "strict",
                       "PrivateTmp": "true", "ProtectHome": "true", "User": "ulm",
                       "Restart": "on-failure", "StateDirectory": "ulm",
                       "ConfigurationDirectory": "ulm"}.items():
        assert keys[key] == value, key
    assert "-HUP" in keys["ExecReload"]
    assert keys["CapabilityBoundingSet"] == ""


def test_its_command_line_is_one_ulm_run_accepts(tmp_path: Path) -> None:
    argv = shlex.split(_keys(UNIT.read_text())["ExecStart"])
    assert argv[1] == "run" and "/etc/ulm/ulm.toml" in argv
    # every option it passes exists (an unknown one fails even with --help)
    out = subprocess.run([ULM, *argv[1:], "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
