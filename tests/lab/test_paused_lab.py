"""On the real lab: a guest an admin paused with virsh is stored, shown and kept as paused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.lab.test_daemon_lab import configure, hot_host, ulm
from ulm.lab.lab import Lab, exec_prefix
from ulm.lab.paths import LabPaths

pytestmark = pytest.mark.lab


def test_a_guest_paused_with_virsh_is_paused_in_status_and_never_moved(
        clean_lab: Lab, tmp_path: Path) -> None:
    hot_host(clean_lab)  # labh1 at 90 %: relief would move its hungriest guest, "hungry"
    out = subprocess.run([*exec_prefix(), "virsh", "-c", LabPaths.tcp_uri(1), "suspend",
                          "hungry"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cfg = configure(tmp_path, clean_lab)
    run = ulm("run", "-c", str(cfg), "--mode", "advise", "--rounds", "3")
    assert run.returncode == 0, run.stderr
    assert "VM hungry is paused on labh1" in run.stderr  # reported, once
    assert run.stderr.count("VM hungry is paused") == 1
    doc = json.loads(ulm("status", "-c", str(cfg), "--format", "json").stdout)
    states = {v["name"]: v["state"] for v in doc["vms"]}
    assert states == {"hungry": "paused", "quiet": "running"}
    plans = json.loads(ulm("plans", "-c", str(cfg), "--format", "json").stdout)
    assert plans, "labh1 at 90 % makes a plan"
    for p in plans:
        assert all(a.get("vm") != "hungry" for a in p["plan"]["actions"])
        rows = [d for d in p["plan"]["decisions"] if d["vm"] == "hungry"]
        assert [d["outcome"] for d in rows] == ["kept: VM is paused"]
    assert clean_lab.find("hungry") == "labh1"
    dom = clean_lab.connect(1).lookupByName("hungry")
    assert dom.state()[0] == 3  # VIR_DOMAIN_PAUSED: ULM did not resume someone else's pause
