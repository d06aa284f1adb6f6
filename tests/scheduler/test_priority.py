"""VM priorities (`ulm.priority` label, `[constraints] pin_critical`): hand-computed cases
through `schedule`, the production path."""

from __future__ import annotations

import pytest

from tests.builders import SEED, host, policy, snap, vm
from ulm.model import Move, Plan
from ulm.scheduler import schedule
from ulm.scheduler.gates import priority

HOSTS = [host("h1"), host("h2"), host("h3")]


def moves(plan: Plan) -> list[tuple[str, str, str]]:
    return [(a.vm, a.src, a.dst) for a in plan.actions if isinstance(a, Move)]


def row(plan: Plan, name: str) -> str:
    return next(d.outcome for d in plan.decisions if d.vm == name)


def rank(word: str) -> dict[str, str]:
    return {"ulm.priority": word}


@pytest.mark.parametrize(("label", "expected"), [
    ("low", 0), ("normal", 1), ("high", 2), ("critical", 3), (" High ", 2), ("0", 0),
    ("3", 3), ("urgent", 1), ("7", 1), ("", 1), (None, 1),
])
def test_the_label_reads_as_a_rank(label: str | None, expected: int) -> None:
    assert priority(label) == expected


@pytest.mark.parametrize("rule", ["largest", "mmt", "mu", "cost", "rs", "mc"])
def test_the_lowest_priority_leaves_an_overloaded_host_first(rule: str) -> None:
    # h1 at 6.6/8 = 82.5 %: without priorities "largest" moves big (3.0); with them small
    # (low) goes first and is enough alone (5.0/8 = 62.5 %), whatever the rule says.
    vms = [vm("big", "h1", 3.0, labels=rank("high")), vm("small", "h1", 1.6, labels=rank("low")),
           vm("mid", "h1", 2.0)]
    plan = schedule(snap(HOSTS, vms), policy(SEED.replace('"largest"', f'"{rule}"')), 0.0)
    assert moves(plan) == [("small", "h1", "h2")]
    assert row(plan, "small") == "moved to h2 (priority low)"


def test_within_a_rank_the_selection_rule_decides() -> None:
    # Two low VMs: "largest" takes the bigger one (2.0; 4.6/8 = 57.5 % afterwards).
    vms = [vm("big", "h1", 3.0), vm("a", "h1", 1.6, labels=rank("low")),
           vm("b", "h1", 2.0, labels=rank("0"))]
    assert moves(schedule(snap(HOSTS, vms), policy(SEED), 0.0)) == [("b", "h1", "h2")]
    plain = [vm(v.name, "h1", v.load.cpu) for v in vms]  # no labels: today's order
    assert moves(schedule(snap(HOSTS, plain), policy(SEED), 0.0)) == [("big", "h1", "h2")]


def test_under_shortage_the_lowest_priority_stays_unplaced() -> None:
    # h1 and h2 are hot (6.5/8); each sends one 3.0 VM. h3 (2.0 used) takes one (5.0/8 =
    # 62.5 %), not two (8.0/8). The high one is placed first; the low one finds no host.
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [vm("a", "h1", 3.0, labels=rank("low")), vm("x", "h1", 3.5, labels=rank("high")),
           vm("b", "h2", 3.0, labels=rank("high")), vm("y", "h2", 3.5, labels=rank("critical")),
           vm("z", "h3", 2.0)]
    plan = schedule(snap(hosts, vms), policy(SEED), 0.0)
    assert moves(plan) == [("b", "h2", "h3")]
    assert row(plan, "a") == "kept: no host fits (priority low)"
    # Without priorities "largest" sends x and y (3.5 each); x, the first, gets h3.
    plain = [vm(v.name, v.host, v.load.cpu) for v in vms]
    assert moves(schedule(snap(hosts, plain), policy(SEED), 0.0)) == [("x", "h1", "h3")]


def test_pin_critical_keeps_a_critical_vm_off_every_move_but_a_drain() -> None:
    vms = [vm("crit", "h1", 3.0, labels=rank("critical")), vm("mid", "h1", 2.0),
           vm("small", "h1", 1.5)]
    pinned = policy(SEED + "[constraints]\npin_critical = true\n")
    plan = schedule(snap(HOSTS, vms), pinned, 0.0)
    assert moves(plan) == [("mid", "h1", "h2")]  # critical is not selected at all
    assert row(plan, "crit") == "kept: pinned (pin_critical) (priority critical)"
    # Without pin_critical a critical VM is merely the last to leave: mid is enough here.
    free = schedule(snap(HOSTS, vms), policy(SEED), 0.0)
    assert [m[0] for m in moves(free)] == ["mid"]
    big = [host("h1"), host("h2", cpu=16, cores=16)]
    lone = [vm("crit", "h1", 7.0, size=8, labels=rank("critical"))]  # 87.5 %, alone
    assert moves(schedule(snap(big, lone), policy(SEED), 0.0)) == [("crit", "h1", "h2")]
    assert moves(schedule(snap(big, lone), pinned, 0.0)) == []
