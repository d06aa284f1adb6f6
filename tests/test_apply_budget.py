"""The executor re-checks the day's migration budget right before each move: a plan advised
earlier and applied later finds what is left of today's budget then, counted in the store's
journal; a drain for maintenance is never held back."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from tests.test_recheck import snapshot
from ulm.budget import day_start
from ulm.clock import SimClock
from ulm.drivers.sim import SimCluster
from ulm.execute.recheck import SnapshotCheck
from ulm.executor import Cause, Executor, Limits, Status
from ulm.model import HostState, Move, Plan
from ulm.policy import resolve_policy
from ulm.store import Store


def _run(tmp: Path, budget: int | None, used: int, maintenance: bool = False
         ) -> tuple[list[Status], list[Cause], list[str], Store]:
    snap = snapshot(4, 12)
    hosts = snap.host_names
    placement = {snap.vm_names[i]: hosts[int(snap.vm_host[i])] for i in range(snap.n_vms)}
    src = max(hosts, key=list(placement.values()).count)  # three of its VMs move
    if maintenance:  # that host is being drained for maintenance
        snap = dataclasses.replace(snap, host_state=tuple(
            HostState.MAINTENANCE if h == src else HostState.ON for h in hosts))
    store = Store.open(f"sqlite:///{tmp}/ulm.db", mode="create")
    now = time.time()
    for i in range(used):  # migrations started earlier today (by an earlier plan)
        store.intent("earlier", i + 1, Move("old", "h0", "h1", "t"))
    base = resolve_policy("ulm")
    policy = base.model_copy(update={
        "gates": base.gates.model_copy(update={"max_migrations_per_day": budget}),
        "placement": base.placement.model_copy(update={"respect_memory": False,
                                                       "max_cpu": 1.0})})
    clock = SimClock(now)
    cluster = SimCluster(clock, placement, {v: 1024.0 for v in placement})
    check = SnapshotCheck(lambda: policy, lambda: snap, store.migrations_since, clock.now)
    check.feed(snap)
    ex = Executor(cluster, clock, store, Limits(max_concurrent=1, poll_s=1.0), check=check)
    mine = [v for v, h in placement.items() if h == src][:3]
    assert len(mine) == 3
    moves = tuple(Move(v, src, hosts[(hosts.index(src) + i) % len(hosts)], "t")
                  for i, v in enumerate(mine, 1))
    plan = Plan("s", "p", now, moves)
    res = ex.execute(plan, store.save_plan(plan, "advise"))
    assert day_start(policy, now) <= now
    return ([o.status for o in res.outcomes], [o.cause for o in res.outcomes],
            [o.detail for o in res.outcomes], store)


def test_moves_past_what_is_left_today_are_refused_with_a_typed_reason(tmp_path: Path) -> None:
    status, cause, detail, store = _run(tmp_path, budget=3, used=2)
    assert status == [Status.DONE, Status.SKIPPED, Status.SKIPPED], detail
    assert cause[1:] == [Cause.DAY_BUDGET, Cause.DAY_BUDGET]
    assert detail[1].startswith("today's migration budget used up (3 of 3 started today)")
    assert store.migrations_since(0.0) == 3  # nothing refused was journalled as started


def test_without_a_budget_or_with_room_every_move_starts(tmp_path: Path) -> None:
    status, _, detail, _ = _run(tmp_path, budget=None, used=50)
    assert status == [Status.DONE] * 3, detail


def test_a_maintenance_drain_is_never_held_back(tmp_path: Path) -> None:
    status, _, detail, store = _run(tmp_path, budget=1, used=1, maintenance=True)
    assert status == [Status.DONE] * 3, detail
    assert store.migrations_since(0.0) == 4  # it counts, past the budget
