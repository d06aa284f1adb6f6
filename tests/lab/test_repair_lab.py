"""`mode = "repair-only"` on the real lab: two guests labelled into one anti-affinity group
(libvirt metadata, as an operator sets it) share labh1, which is also overloaded; the
daemon's plan moves exactly one of them, for the repair, and relieves nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.helpers import set_label
from tests.lab.test_daemon_lab import POLICY, configure, the_advised_plan
from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab


def test_repair_only_moves_one_guest_of_a_doubled_anti_affinity_pair(
        clean_lab: Lab, tmp_path: Path) -> None:
    for name in ("web1", "web2"):
        clean_lab.vm_add(name, "labh1", 128, "linux", burn=1)
        set_label(name, "ulm.anti-affinity", "w")
    clean_lab.set_load("labh1", "90")  # normal mode would relieve labh1 as well
    cfg = configure(tmp_path, clean_lab)
    (tmp_path / "policy.toml").write_text('mode = "repair-only"\n' + POLICY)
    plan = the_advised_plan(cfg)
    moves = [a for a in plan["actions"] if a.get("vm")]
    assert len(moves) == 1 and len(plan["actions"]) == 1, plan["actions"]
    (move,) = moves
    assert move["vm"] in ("web1", "web2") and move["src"] == "labh1" and move["dst"] != "labh1"
    assert move["reason"] == "repair: anti-affinity group w has 2 VMs on labh1"
