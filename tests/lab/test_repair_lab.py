"""`mode = "repair-only"` on the real lab: two guests labelled into one anti-affinity group
(libvirt metadata, as an operator sets it) share labh1, which is also overloaded; the
daemon's plan moves exactly one of them, for the repair, and relieves nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab.helpers import in_controller
from tests.lab.test_daemon_lab import POLICY, configure, ulm
from ulm.collect.domain_xml import NS
from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab


def label(name: str, key: str, value: str) -> None:
    assert in_controller(
        "import json, libvirt\n"
        f"d = libvirt.open('qemu+tcp://10.77.0.1/system').lookupByName('{name}')\n"
        "d.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,\n"
        f"    '<labels><label name=\"{key}\">{value}</label></labels>', 'ulm',\n"
        f"    '{NS}', libvirt.VIR_DOMAIN_AFFECT_LIVE)\n"
        "print(json.dumps(True))")


def test_repair_only_moves_one_guest_of_a_doubled_anti_affinity_pair(
        clean_lab: Lab, tmp_path: Path) -> None:
    for name in ("web1", "web2"):
        clean_lab.vm_add(name, "labh1", 128, "linux", burn=1)
        label(name, "ulm.anti-affinity", "w")
    clean_lab.set_load("labh1", "90")  # normal mode would relieve labh1 as well
    cfg = configure(tmp_path, clean_lab)
    (tmp_path / "policy.toml").write_text('mode = "repair-only"\n' + POLICY)
    out = ulm("run", "-c", str(cfg), "--mode", "advise", "--rounds", "2")
    assert out.returncode == 0, out.stderr
    plans = json.loads(ulm("plans", "-c", str(cfg), "--format", "json").stdout)
    proposed = [p["plan"] for p in plans if p["status"] == "proposed"]
    assert len(proposed) == 1, (plans, out.stderr[-3000:])
    (plan,) = proposed
    moves = [a for a in plan["actions"] if a.get("vm")]
    assert len(moves) == 1 and len(plan["actions"]) == 1, plan["actions"]
    (move,) = moves
    assert move["vm"] in ("web1", "web2") and move["src"] == "labh1" and move["dst"] != "labh1"
    assert move["reason"] == "repair: anti-affinity group w has 2 VMs on labh1"
