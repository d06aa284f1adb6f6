"""A paused or crashed VM is a state, not a running VM: stored, shown, reported once, and
never moved; it still holds its host (its RAM, the CPU it takes back when resumed)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from tests.daemon.fakes import world
from tests.daemon.test_stale import moves, status_now
from ulm.api.views import Reader
from ulm.model import HostState, VmState
from ulm.policy import resolve_policy
from ulm.scheduler import schedule
from ulm.store import Store

# hA: web1 (2.0) + db (1.5) of 4 cores = 87.5 % > 75 %: relief moves the hungriest, web1.
PLACEMENT = {"web1": "hA", "db": "hA"}
CPU = {"web1": 2.0, "db": 1.5}


def test_a_running_hungry_vm_is_the_one_relief_moves(tmp_path: Path) -> None:
    """The counter-proof of the next test: the same cluster, web1 running."""
    w = world(tmp_path, dict(PLACEMENT), vm_cpu=dict(CPU))
    assert "web1: hA -> hB" in moves(w.rounds(4))


def test_a_paused_vm_is_kept_counted_shown_and_reported_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path, dict(PLACEMENT), vm_cpu=dict(CPU), interval=10.0, rounds=4)
    w.cluster.paused.add("web1")  # an admin's `virsh suspend web1`
    with caplog.at_level(logging.INFO, "ulm"):
        results = w.rounds(4)
    done = moves(results)
    assert not any(m.startswith("web1:") for m in done)  # never moved
    # ... and still counted on hA: without its share hA (1.5 of 4) is calm and nothing moves
    assert "db: hA -> hB" in done
    plan = next(r.plan for r in results if r.plan is not None and r.plan.actions)
    (row,) = [d for d in plan.decisions if d.vm == "web1"]
    assert (row.host, row.trigger, row.outcome) == ("hA", "VM is paused", "kept: VM is paused")
    said = [r for r in caplog.records if r.getMessage().startswith("VM web1 is paused on hA")]
    assert len(said) == 1 and said[0].levelno == logging.WARNING  # once, not every round
    # the store keeps the state: a separate reader sees it
    reader = Store.open(w.daemon.cfg.store.url, mode="read")
    snap = reader.snapshot(w.clock.now(), 4, w.daemon.cfg.collect.stale_s)
    assert {v.name: v.state for v in snap.vms} == {"db": VmState.RUNNING,
                                                   "web1": VmState.PAUSED}
    api = {v.name: v.state for v in Reader(reader, w.daemon.cfg, w.clock.now).vms()}
    assert api == {"db": "running", "web1": "paused"}
    doc = json.loads(status_now(w, tmp_path, "--format", "json"))
    assert {v["name"]: v["state"] for v in doc["vms"]} == {"db": "running", "web1": "paused"}
    line = next(x for x in status_now(w, tmp_path).splitlines() if x.startswith("│ web1"))
    assert "paused" in line
    w.cluster.paused.discard("web1")  # resumed: said once, and movable again
    with caplog.at_level(logging.INFO, "ulm"):
        w.rounds(1)
    assert sum(r.getMessage() == "VM web1 runs again" for r in caplog.records) == 1


def test_a_crashed_vm_is_never_moved_off_a_host_in_maintenance(tmp_path: Path) -> None:
    """A drain is all-or-nothing: a crashed VM on the host blocks it, and the plan says why
    (moving a crashed guest would lose what its owner keeps it for: a dump, a look)."""
    w = world(tmp_path, {"web1": "hA", "db": "hA"})
    w.cluster.crashed.add("web1")
    w.rounds(1)
    snap = w.store.snapshot(w.clock.now(), 4, w.daemon.cfg.collect.stale_s)
    assert snap.vm(snap.vm_index["web1"]).state is VmState.CRASHED
    closed = replace(snap, host_state=(HostState.MAINTENANCE, HostState.ON))
    plan = schedule(closed, resolve_policy("seed"), w.clock.now())
    assert not any(m.vm == "web1" for m in plan.moves)
    assert "cannot empty hA: web1 may not move (VM is crashed)" in plan.problems
