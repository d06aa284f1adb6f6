"""`ulm lab load HOST --burn N`: the host's guests really burn CPU (busy loops started inside
them through their control port), and the host's measured CPU follows — no forced figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.helpers import eventually, node_cpu
from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab

ULM = str(Path(sys.executable).parent / "ulm")


def _serial(lab: Lab, i: int, vm: str) -> str:
    path = lab.paths.host(i) / "var-up" / "log" / "libvirt" / "qemu" / f"{vm}.serial"
    return path.read_text(errors="replace") if path.exists() else ""


def test_burn_really_raises_the_hosts_measured_cpu(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.vm_add("hot", "labh3", 128, "linux")  # boots idle: no busy loop on its command line
    assert eventually(lambda: "LABGUEST READY burn=0" in _serial(lab, 3, "hot"), timeout=60)
    assert eventually(lambda: node_cpu(lab.connect(3), 1.5) < 0.3, timeout=30)  # boot is over
    idle = node_cpu(lab.connect(3), 1.5)
    out = subprocess.run([ULM, "lab", "load", "labh3", "--burn", "1"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hot burn 1" in out.stdout
    assert eventually(lambda: "LABGUEST burn=1" in _serial(lab, 3, "hot"), timeout=20)
    # One busy guest takes about one of the machine's cores: ~0.5 of a 2-core host when the
    # machine is otherwise quiet, less when other work shares the cores (0.29 was seen at
    # load 7), so "burns" is measured against the same host idle a moment before.
    assert eventually(lambda: node_cpu(lab.connect(3), 1.5) > idle + 0.15, timeout=40), idle
    assert (lab.paths.host(3) / "load").read_text().strip() == "auto"  # not a forced figure
    assert node_cpu(lab.connect(2), 1.5) < 0.2  # the other hosts stay cool
    lab.burn("labh3", 0)
    assert eventually(lambda: node_cpu(lab.connect(3), 1.5) < 0.3, timeout=40)
