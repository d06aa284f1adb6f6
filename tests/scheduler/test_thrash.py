"""Anti-thrash per VM (`[gates] max_moves_per_vm_per_day`, `cooldown_growth`, `max_cooldown_s`):
hand-computed cases through `schedule`, the production path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.builders import SEED, host, policy, snap, vm
from ulm.model import VM, HostState, Move, Plan
from ulm.scheduler import schedule
from ulm.scheduler.gates import cooldowns
from ulm.snapshot import Snapshot

HOSTS = [host("h1"), host("h2"), host("h3")]


def moves(plan: Plan) -> list[tuple[str, str, str]]:
    return [(a.vm, a.src, a.dst) for a in plan.actions if isinstance(a, Move)]


def row(plan: Plan, name: str) -> str:
    return next(d.outcome for d in plan.decisions if d.vm == name)


def moved(v: VM, today: int, at: float | None = None, took: float | None = None) -> VM:
    return replace(v, moves_today=today, last_moved_at=at, last_move_s=took)


def hot(busy: VM) -> Snapshot:
    """h1 at 6.5/8 = 81 % (> 75 %): `busy` (3.0, the hungriest) leaves first, unless held;
    then `other` (2.0) does (4.5/8 = 56 %)."""
    return snap(HOSTS, [busy, vm("other", "h1", 2.0), vm("small", "h1", 1.5)])


def gates(text: str) -> str:
    return SEED + "[gates]\n" + text


@pytest.mark.parametrize(("today", "limit", "expected"), [
    (3, 3, "other"),  # at the limit: held
    (2, 3, "busy"),  # below it
    (5, 3, "other"),
    (3, 4, "busy"),
])
def test_at_most_k_moves_per_vm_per_day(today: int, limit: int, expected: str) -> None:
    s = hot(moved(vm("busy", "h1", 3.0), today))
    plan = schedule(s, policy(gates(f"max_moves_per_vm_per_day = {limit}\n")), 1000.0)
    assert [m[0] for m in moves(plan)] == [expected]
    if expected == "other":
        assert row(plan, "busy") == f"kept: moved {today} times today (limit {limit})"


def test_the_count_is_the_snapshots_day_only() -> None:
    s = hot(moved(vm("busy", "h1", 3.0), 3))  # taken at 0: 1970-01-01 (UTC)
    pol = policy(gates("max_moves_per_vm_per_day = 3\n"))
    assert moves(schedule(s, pol, 86399.0))[0][0] == "other"
    assert moves(schedule(s, pol, 86400.0))[0][0] == "busy"  # a new day: a fresh count


# (moves today, last move's duration, base, growth, cap) -> cool-down (s), by hand
@pytest.mark.parametrize(("today", "took", "base", "growth", "cap", "expected"), [
    (1, None, 600, 2, 86400, 600),  # first move today: the base
    (2, None, 600, 2, 86400, 1200),
    (3, None, 600, 2, 86400, 2400),  # 600 x 2 x 2
    (3, 900, 600, 2, 86400, 3600),  # the migration took longer than the base: 900 x 4
    (3, None, 600, 3, 86400, 5400),  # 600 x 3 x 3
    (10, None, 600, 2, 3600, 3600),  # capped
    (10, None, 600, 2, 60, 600),  # never below the base
    (0, 900, 600, 2, 86400, 900),  # moved on an earlier day: its duration still counts
    (5, 900, 600, 1, 86400, 600),  # growth 1 (the default): the base, as before
])
def test_cooldown_grows_with_each_move_today(today: int, took: float | None, base: float,
                                             growth: float, cap: float,
                                             expected: float) -> None:
    s = snap(HOSTS, [moved(vm("v", "h1", 1.0), today, 0.0, took)])
    pol = policy(gates(f"cooldown_s = {base}\ncooldown_growth = {growth}\n"
                       f"max_cooldown_s = {cap}\n"))
    assert cooldowns(s, pol, np.asarray(s.vm_moves_today)).tolist() == [expected]


def test_a_grown_cooldown_holds_the_vm_and_says_how_long_is_left() -> None:
    # 3 moves today, the last at t=1000: 600 x 2 x 2 = 2400 s, i.e. until t=3400.
    s = hot(moved(vm("busy", "h1", 3.0), 3, at=1000.0, took=30.0))
    pol = policy(gates("cooldown_s = 600\ncooldown_growth = 2\n"))
    plan = schedule(s, pol, 2800.0)
    assert moves(plan)[0][0] == "other"
    assert row(plan, "busy") == ("kept: cool-down 10 min left of 40 min (moved 3 time(s) "
                                 "today; x2 a move)")
    assert moves(schedule(s, pol, 3400.0))[0][0] == "busy"
    # the same VM under the flat cool-down: free after 600 s, the row as it always was
    flat = policy(gates("cooldown_s = 600\n"))
    assert moves(schedule(s, flat, 1600.0))[0][0] == "busy"
    assert row(schedule(s, flat, 1500.0), "busy") == "kept: cool-down: moved 500 s ago"


def test_a_maintenance_drain_is_held_by_no_anti_thrash_gate() -> None:
    hosts = [host("h1", state=HostState.MAINTENANCE), host("h2"), host("h3")]
    vms = [moved(vm("tired", "h1", 1.0), 3, at=990.0),
           moved(vm("cool", "h1", 1.0), 1, at=995.0),
           vm("crit", "h1", 1.0, labels={"ulm.priority": "critical"})]
    pol = policy(gates("cooldown_s = 600\ncooldown_growth = 2\nmax_moves_per_vm_per_day = 3\n")
                 + "[constraints]\npin_critical = true\n")
    plan = schedule(snap(hosts, vms), pol, 1000.0)
    assert sorted(m[0] for m in moves(plan)) == ["cool", "crit", "tired"]
    # a hard reason still holds a drain: a pinned VM keeps the host from emptying
    pinned = [*vms, vm("stuck", "h1", 1.0, labels={"ulm.pinned": "true"})]
    plan = schedule(snap(hosts, pinned), pol, 1000.0)
    assert moves(plan) == []
    assert any("cannot empty h1: stuck may not move (pinned)" in p for p in plan.problems)


def test_consolidation_is_held_by_the_gates() -> None:
    """Packing is not a drain for maintenance: a VM at its daily limit keeps its host on."""
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [moved(vm("a", "h1", 1.0), 2), vm("b", "h2", 1.0), vm("c", "h3", 1.0)]
    text = SEED + "[consolidation]\nenabled = true\nunderload_threshold = 0.5\n"
    assert "a" in [m[0] for m in moves(schedule(snap(hosts, vms), policy(text), 0.0))]
    capped = schedule(snap(hosts, vms),
                      policy(text + "[gates]\nmax_moves_per_vm_per_day = 2\n"), 0.0)
    assert "a" not in [m[0] for m in moves(capped)] and moves(capped)
    assert "cannot empty h1: a may not move (moved 2 times today (limit 2))" in capped.problems


def test_a_vm_an_earlier_plan_moves_off_is_no_reason_the_host_cannot_empty() -> None:
    """h1 is in maintenance; its VM `queued` is held by a background plan's move to h2 (queued,
    not yet started: the daemon marks it as `Holds.mark` does). The evacuation cannot move it
    again, but nothing is stuck: no "cannot empty h1 ... (migration in flight)". A pinned VM
    beside it still is, and only it is named."""
    from ulm.execute.holds import mark_moves
    hosts = [host("h1", state=HostState.MAINTENANCE), host("h2"), host("h3")]
    held = mark_moves(snap(hosts, [vm("queued", "h1", 1.0)]), [Move("queued", "h1", "h2", "t")])
    plan = schedule(held, policy(SEED), 1000.0)
    assert moves(plan) == [] and not [p for p in plan.problems if "cannot empty" in p]
    pinned = mark_moves(snap(hosts, [vm("queued", "h1", 1.0),
                                     vm("stuck", "h1", 1.0, labels={"ulm.pinned": "true"})]),
                        [Move("queued", "h1", "h2", "t")])
    plan = schedule(pinned, policy(SEED), 1000.0)
    assert [p for p in plan.problems if "cannot empty" in p] == \
        ["cannot empty h1: stuck may not move (pinned)"]
