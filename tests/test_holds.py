"""What unfinished actions hold, and the limits every running plan shares."""

from __future__ import annotations

import numpy as np

from tests.daemon.stepped import LockedCluster, SteppedClock
from ulm.execute.holds import Holds
from ulm.executor import Executor, Limits, MemoryJournal, Status
from ulm.model import HostState, Move, Plan, PowerOff
from ulm.policy import resolve_policy
from ulm.scheduler import schedule
from ulm.snapshot import Snapshot


def test_admit_drops_what_is_held_and_the_power_off_of_a_host_it_no_longer_empties() -> None:
    holds = Holds()
    holds.take("p1", [Move("x", "h1", "h2", "t"), PowerOff("h9", "t")])
    plan = Plan("s", "p", 0.0, (Move("y", "h3", "h2", "t"), Move("z", "h3", "h4", "t"),
                               PowerOff("h3", "t"), Move("w", "h5", "h6", "t"),
                               PowerOff("h9", "t")))
    out = holds.admit(plan)
    assert out.actions == (Move("z", "h3", "h4", "t"), Move("w", "h5", "h6", "t"))
    assert len(out.problems) == 3
    holds.release("p1", Move("x", "h1", "h2", "t"))
    holds.release_plan("p1")
    assert holds.admit(plan) is plan


def test_a_held_move_is_in_flight_in_the_snapshot_and_the_scheduler_keeps_it() -> None:
    hist = np.full((2, 5), 3.8)  # both VMs hot on h0: the scheduler wants to move one
    snap = Snapshot(
        taken_at=0.0, host_names=("h0", "h1", "h2"), host_cpu=np.full(3, 8.0),
        host_mem=np.full(3, 16384.0), host_cores=np.full(3, 8, np.int64),
        host_state=(HostState.ON,) * 3, vm_names=("a", "b"), vm_host=np.zeros(2, np.int64),
        vm_cpu_size=np.full(2, 4.0), vm_mem_size=np.full(2, 1024.0), vm_cpu=hist[:, -1].copy(),
        vm_mem=np.full(2, 512.0), vm_history=hist, vm_vcpus=np.full(2, 2, np.int64))
    policy = resolve_policy("ulm")
    assert schedule(snap, policy, 0.0).moves  # something moves when nothing is held
    holds = Holds()
    holds.take("p1", [Move("a", "h0", "h1", "t"), Move("b", "h0", "h2", "t")])
    marked = holds.mark(snap)
    assert marked.vm_migrating_to.tolist() == [1, 2]
    assert schedule(marked, policy, 0.0).moves == ()


def test_plans_running_side_by_side_share_the_limit_of_migrations_in_flight() -> None:
    clock = SteppedClock(1000.0)
    cluster = LockedCluster(clock, {"a": "h1", "b": "h3"}, {"a": 625.0, "b": 625.0})  # 10 s
    ex = Executor(cluster, clock, MemoryJournal(), Limits(max_concurrent=1, poll_s=1.0))
    results: dict[str, list[Status]] = {}
    for pid, move in (("p1", Move("a", "h1", "h2", "t")), ("p2", Move("b", "h3", "h4", "t"))):
        ex.submit(Plan("s", "p", 0.0, (move,)), pid,
                  lambda p, r: results.update({p: [o.status for o in r.outcomes]}))
    most = 0
    for _ in range(40):
        clock.quiet(ex)
        most = max(most, len(cluster.running_jobs()))
        if not ex.running:
            break
        clock.sleep(1.0)
    assert ex.join(10)
    assert most == 1  # one at a time, although the plans touch four different hosts
    assert results == {"p1": [Status.DONE], "p2": [Status.DONE]}
    assert cluster.placement == {"a": "h2", "b": "h4"}
