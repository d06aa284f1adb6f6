"""VM labels from a real guest's libvirt metadata and host CPUs from real libvirtd capabilities
reach the daemon's plan (a must-not label rule keeps the guest off a host) and `ulm status`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab.helpers import set_label
from tests.lab.test_daemon_lab import POLICY, configure, the_advised_plan, ulm
from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab

RULE = """
[[constraints.host_rules]]
vms = { app = "web" }
hosts = { rack = "b" }
kind = "must-not"
"""


def test_a_metadata_label_and_a_must_not_rule_keep_the_guest_off_the_host(
        clean_lab: Lab, tmp_path: Path) -> None:
    clean_lab.vm_add("web", "labh1", 128, "linux", burn=1)
    clean_lab.set_load("labh1", "90")
    # the label as an operator would set it (`virsh metadata ... --live`), on labh1's libvirtd
    set_label("web", "app", "web")
    cfg = configure(tmp_path, clean_lab)
    (tmp_path / "policy.toml").write_text(POLICY + RULE)
    text = cfg.read_text().replace('name = "labh2"\n', 'name = "labh2"\nlabels = { rack = "b" }\n')
    cfg.write_text(text)
    plan = the_advised_plan(cfg)
    # first-fit would take labh2 (see test_daemon_lab); the rule leaves labh3
    assert [(a["vm"], a["dst"]) for a in plan["actions"]] == [("web", "labh3")]
    (row,) = [d for d in plan["decisions"] if d["vm"] == "web"]
    assert row["rejections"]["label rule: must not run on rack=b"] == 1  # labh2, and only it
    status = json.loads(ulm("status", "-c", str(cfg), "--format", "json").stdout)
    (web,) = [v for v in status["vms"] if v["name"] == "web"]
    assert web["labels"] == {"app": "web"}
    # every real host's CPU came from libvirt's capabilities
    assert all(h.get("cpu_model") and h.get("cpu_features") for h in status["hosts"])
