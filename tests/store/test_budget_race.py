"""Two plans applied at once (the API's apply and a round's, both in the background) share the
day's migration budget: with one migration left, exactly one of their moves starts, whichever
comes first, and the store's journal never counts more than the budget.

The race is made certain rather than hoped for: the budget count waits at a barrier for the
other plan's count. Without the reservation (count and intent under one lock) both plans count
0 started, pass the barrier together and both start; with it, the second count waits for the
first plan's intent (the barrier times out for the first, then finds it broken).
"""

from __future__ import annotations

import contextlib
import threading
import time

from tests.test_recheck import snapshot
from ulm.budget import day_start
from ulm.clock import SimClock
from ulm.drivers.sim import SimCluster
from ulm.execute.recheck import SnapshotCheck
from ulm.executor import Cause, Executor, Limits, PlanResult, Status
from ulm.model import Move, Plan
from ulm.policy import resolve_policy
from ulm.store import Store

BARRIER_S = 2.0  # how long a count waits for the other plan's (only with the fix it waits)


def test_two_plans_at_once_never_start_more_than_the_budget(store: Store) -> None:
    left = 1  # the day's last migration: both plans want it
    snap = snapshot(8, 16)
    hosts = snap.host_names
    placement = {snap.vm_names[i]: hosts[int(snap.vm_host[i])] for i in range(snap.n_vms)}
    base = resolve_policy("ulm")
    budget = 3
    policy = base.model_copy(update={
        "gates": base.gates.model_copy(update={"max_migrations_per_day": budget}),
        "placement": base.placement.model_copy(update={"respect_memory": False,
                                                       "max_cpu": 1.0})})
    now = time.time()
    for i in range(budget - left):  # started earlier today
        store.intent("earlier", i + 1, Move("old", hosts[0], hosts[1], "t"))
    reader = store.twin()  # as `ulm run`'s re-check: its own connections, from any thread
    barrier = threading.Barrier(2, timeout=BARRIER_S)

    def counted(since: float) -> int:
        n = int(reader.migrations_since(since))
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # the other plan's thread counts too, before either goes on
        return n

    clock = SimClock(now)
    cluster = SimCluster(clock, placement, {v: 1024.0 for v in placement})
    check = SnapshotCheck(lambda: policy, lambda: snap, counted, clock.now)
    check.feed(snap)
    ex = Executor(cluster, clock, store, Limits(max_concurrent=8, max_per_host=8, poll_s=1.0),
                  check=check)
    # Two plans, each with `left` moves between hosts of its own (else one holds the other).
    plans = []
    by_count = sorted(hosts, key=list(placement.values()).count)  # the emptiest first
    for p in range(2):
        src, dst = by_count[-1 - p], by_count[p]
        mine = sorted(v for v, h in placement.items() if h == src)[:left]
        assert len(mine) == left
        plan = Plan("s", f"p{p}", now, tuple(Move(v, src, dst, "t") for v in mine))
        plans.append((plan, store.save_plan(plan, "advise")))
    results: dict[str, PlanResult] = {}
    for plan, pid in plans:  # both handed over before either has started a move
        ex.submit(plan, pid, lambda pid, r: results.__setitem__(pid, r))
    assert ex.join(60.0)
    ex.close()  # the twin the plans wrote through
    reader.close()
    outcomes = [o for r in results.values() for o in r.outcomes]
    started = [o for o in outcomes if o.status is Status.DONE]
    refused = [o for o in outcomes if o.status is Status.SKIPPED]
    assert len(outcomes) == 2 * left
    assert len(started) == left, [(o.status, o.detail) for o in outcomes]
    assert {o.cause for o in refused} == {Cause.DAY_BUDGET}, [o.detail for o in refused]
    assert store.migrations_since(day_start(policy, now)) == budget  # never more
