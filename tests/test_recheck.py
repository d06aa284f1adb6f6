"""The executor's re-check on the move's own hosts: the same verdict as the core's rule on the
whole snapshot, migrations in flight counted, and never "stale" only because a plan is old."""

from __future__ import annotations

import dataclasses

import numpy as np

from ulm.clock import SimClock
from ulm.drivers.sim import SimCluster
from ulm.execute.holds import mark_moves
from ulm.execute.recheck import SnapshotCheck, check_around
from ulm.executor import Executor, Limits, MemoryJournal, Status
from ulm.model import HostState, Move, Plan
from ulm.policy import resolve_policy
from ulm.scheduler import check_move
from ulm.snapshot import Snapshot


def snapshot(n_hosts: int = 12, n_vms: int = 90, seed: int = 3) -> Snapshot:
    """Hosts of 8 cores, VMs of 2 vCPUs at 20-90 %: some hosts nearly full."""
    rng = np.random.default_rng(seed)
    hist = rng.uniform(0.2, 0.9, (n_vms, 10)) * 2.0
    return Snapshot(
        taken_at=1e6, host_names=tuple(f"h{i}" for i in range(n_hosts)),
        host_cpu=np.full(n_hosts, 8.0), host_mem=np.full(n_hosts, 16384.0),
        host_cores=np.full(n_hosts, 8, np.int64), host_state=(HostState.ON,) * n_hosts,
        vm_names=tuple(f"v{i}" for i in range(n_vms)),
        vm_host=rng.integers(0, n_hosts, n_vms), vm_cpu_size=np.full(n_vms, 2.0),
        vm_mem_size=rng.choice([1024.0, 2048.0, 4096.0], n_vms), vm_cpu=hist[:, -1].copy(),
        vm_mem=np.full(n_vms, 1024.0), vm_history=hist, vm_vcpus=np.full(n_vms, 2, np.int64))


def every_move(snap: Snapshot) -> list[Move]:
    return [Move(snap.vm_names[i], snap.host_names[int(snap.vm_host[i])], snap.host_names[d],
                 "t") for i in range(0, snap.n_vms, 3) for d in range(snap.n_hosts)
            if d != int(snap.vm_host[i])]


def test_the_cut_gives_the_whole_snapshots_verdict_with_flights_counted() -> None:
    snap = snapshot()
    for name in ("ulm", "lr-mmt-1.2"):
        policy = resolve_policy(name)
        flights = every_move(snap)[1::37][:6]
        busy = {m.vm for m in flights}
        marked = mark_moves(snap, flights)
        verdicts = []
        for m in every_move(snap):
            if m.vm in busy:
                continue
            whole = check_move(marked, policy, m)
            assert check_around(snap, policy, m, flights) == whole, m
            verdicts.append(whole is None)
        assert any(verdicts) and not all(verdicts)  # both answers were exercised


def test_a_long_plan_is_not_refused_because_it_outlived_stale_s() -> None:
    """Three moves one after the other, 200 s each, stale_s long gone by the last: each is
    checked against the round's snapshot, whose hosts' own figures were fresh."""
    snap = snapshot(4, 6)
    placement = {snap.vm_names[i]: snap.host_names[int(snap.vm_host[i])]
                 for i in range(snap.n_vms)}
    clock = SimClock(snap.taken_at)
    cluster = SimCluster(clock, placement, {v: 12500.0 for v in placement})  # 200 s each
    free = [h for h in snap.host_names if h not in placement.values()] or [snap.host_names[0]]
    plan_moves = tuple(Move(v, h, free[0] if free[0] != h else snap.host_names[1], "t")
                       for v, h in list(placement.items())[:3])
    policy = resolve_policy("ulm")
    policy = policy.model_copy(update={"placement": policy.placement.model_copy(
        update={"respect_memory": False})})
    check = SnapshotCheck(lambda: policy, lambda: snap)
    check.feed(snap)
    ex = Executor(cluster, clock, MemoryJournal(), Limits(max_concurrent=1, poll_s=5.0),
                  check=check)
    res = ex.execute(Plan("s", "p", snap.taken_at, plan_moves), "p")
    assert clock.now() - snap.taken_at > 540  # well past any stale_s
    assert [o.status for o in res.outcomes] == [Status.DONE] * 3, [o.detail for o in res.outcomes]
    # A host whose own figures did stop arriving is still refused as a destination.
    stale = dataclasses.replace(snap, host_stale=np.array(
        [h == plan_moves[0].dst for h in snap.host_names]))
    assert check_around(stale, policy, plan_moves[0]) is not None
