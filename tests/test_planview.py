"""The Plan page's figures, pure: each move's load before and after on both its hosts from the
plan's own snapshot (moves replayed in order), the estimate (measured past moves, else the
executor's bandwidth), the risk kinds, and the plan's state."""

from __future__ import annotations

import dataclasses

import numpy as np

from ulm.model import HostState, Move, Plan, VmState
from ulm.planview import PlanState, Risk, loads_of, rate_mib_s, rows, state, with_loads
from ulm.policy import resolve_policy
from ulm.snapshot import Snapshot


def _snap() -> Snapshot:
    """h0 (4 cores, 8 GiB) runs a (2.0 CPU, 2 GiB) and b (1.0, 1 GiB); h1 runs c (0.5, 4 GiB)."""
    return Snapshot(
        taken_at=10_000.0, host_names=("h0", "h1"), host_cpu=np.array([4.0, 4.0]),
        host_mem=np.array([8192.0, 8192.0]), host_cores=np.array([4, 4]),
        host_state=(HostState.ON, HostState.ON), vm_names=("a", "b", "c"),
        vm_host=np.array([0, 0, 1]), vm_cpu_size=np.full(3, 2.0),
        vm_mem_size=np.array([2048.0, 1024.0, 4096.0]), vm_cpu=np.array([2.0, 1.0, 0.5]),
        vm_mem=np.full(3, 512.0), vm_history=np.array([[2.0], [1.0], [0.5]]),
        vm_last_moved=np.array([9_000.0, np.nan, np.nan]))


def _body(bandwidth: float = 0.0) -> dict:  # type: ignore[type-arg]
    plan = Plan("s", "p", 10_000.0, (Move("a", "h0", "h1", "hot", 2048.0),
                                      Move("b", "h0", "h1", "hot", 1024.0)))
    return with_loads(_snap(), plan, resolve_policy("seed")).to_dict()


def test_each_move_shows_both_hosts_before_and_after_in_order() -> None:
    first, second = rows(_body(), 100.0, 600.0)
    assert (first.src_before.cpu, first.src_after.cpu) == (0.75, 0.25)  # type: ignore[union-attr]
    assert (first.dst_before.cpu, first.dst_after.cpu) == (0.125, 0.625)  # type: ignore[union-attr]
    assert (first.src_before.mem, first.dst_after.mem) == (0.375, 0.75)  # type: ignore[union-attr]
    # the second move starts from what the first left
    assert second.src_before == first.src_after and second.dst_before == first.dst_after
    assert second.dst_after.cpu == 0.875  # type: ignore[union-attr]


def test_estimates_come_from_measured_moves_else_the_bandwidth() -> None:
    assert rate_mib_s(50.0, []) == (50.0, "bandwidth")
    assert rate_mib_s(0.0, [])[1] == "assumed"
    assert rate_mib_s(50.0, [(1000.0, 10.0), (1000.0, 20.0), (1000.0, 5.0)]) == \
        (100.0, "measured")
    first, _ = rows(_body(), 64.0, 600.0)
    assert (first.estimate_s, first.estimate_basis) == (32.0, "bandwidth")
    first, _ = rows(_body(), 64.0, 600.0, past=[(2048.0, 4.0)])
    assert (first.estimate_s, first.estimate_basis) == (4.0, "measured")


def test_risks_are_kinds_with_their_figures() -> None:
    first, second = rows(_body(), 2.0, 600.0, failed_to={"h1": 9_500.0})
    kinds = {r.kind for r in first.risks}
    # a moved 1000 s ago; 1024 s of copying against a 600 s deadline; h1 failed 500 s ago
    assert kinds == {Risk.MOVED_RECENTLY, Risk.LONG_MOVE, Risk.DST_FAILED}
    # b lands h1 at 87.5 % CPU, above 90 % of the seed's 75 % threshold
    near = [r for r in second.risks if r.kind is Risk.NEAR_THRESHOLD]
    assert near and near[0].value == 0.875 and near[0].limit == 0.75
    assert Risk.MOVED_RECENTLY not in {r.kind for r in second.risks}
    assert not rows(_body(), 1e6, 600.0)[0].risks[1:]  # only "moved recently" stays


def test_a_plan_stored_without_loads_has_rows_without_load() -> None:
    body = Plan("s", "p", 1.0, (Move("a", "h0", "h1", "hot", 2048.0),)).to_dict()
    (r,) = rows(body, 100.0, 600.0)
    assert r.src_before is None and r.estimate_s == 20.48


def test_loads_keep_only_the_hosts_and_vms_the_moves_touch() -> None:
    plan = Plan("s", "p", 1.0, (Move("b", "h0", "h1", "hot"),))
    got = loads_of(_snap(), plan, resolve_policy("seed"))
    assert set(got["hosts"]) == {"h0", "h1"} and set(got["vms"]) == {"b"}


def test_the_plan_state() -> None:
    assert state("proposed", 0, newer=False) is PlanState.READY
    assert state("proposed", 0, newer=True) is PlanState.SUPERSEDED
    assert state("superseded", 0, newer=False) is PlanState.SUPERSEDED
    assert state("proposed", 1, newer=True) is PlanState.APPLYING  # being applied now
    assert state("running", 0, newer=False) is PlanState.APPLYING
    assert state("applied", 0, newer=True) is PlanState.DONE
    assert state("failed", 0, newer=False) is PlanState.FAILED
    assert state("rejected", 0, newer=False) is PlanState.REJECTED


def test_a_destination_holding_a_paused_vm_is_flagged_with_its_cpu_once_resumed() -> None:
    """c on h1 is paused: idle now (0.1 CPU), 3.0 at its window's peak. Moving b there shows
    h1 at (0.1 + 1.0) / 4 after; resumed, c takes back 2.9 more."""
    snap = dataclasses.replace(_snap(), vm_state=(VmState.RUNNING, VmState.RUNNING,
                                                  VmState.PAUSED),
                               vm_cpu=np.array([2.0, 1.0, 0.1]),
                               vm_history=np.array([[2.0, 2.0], [1.0, 1.0], [3.0, 0.1]]))
    plan = Plan("s", "p", 10_000.0, (Move("b", "h0", "h1", "hot", 1024.0),))
    (r,) = rows(with_loads(snap, plan, resolve_policy("seed")).to_dict(), 1e6, 600.0)
    assert r.dst_after is not None and r.dst_after.cpu == (0.1 + 1.0) / 4
    (flag,) = [f for f in r.risks if f.kind is Risk.DST_PAUSED]
    assert flag.value == (0.1 + 1.0 + 2.9) / 4 and flag.limit == 0.75
    # without a paused VM there: no such flag
    assert Risk.DST_PAUSED not in {f.kind for r in rows(_body(), 1e6, 600.0) for f in r.risks}


def test_a_vm_paused_since_the_plan_was_made_is_flagged_when_its_state_is_given() -> None:
    body = _body()
    now = {"a": VmState.PAUSED, "b": VmState.CRASHED}
    first, second = rows(body, 1e6, 600.0, vm_states=now)
    assert Risk.VM_PAUSED in {f.kind for f in first.risks}
    assert Risk.VM_NOT_RUNNING in {f.kind for f in second.risks}
    running = rows(body, 1e6, 600.0, vm_states={"a": VmState.RUNNING})
    assert not {Risk.VM_PAUSED, Risk.VM_NOT_RUNNING} & {f.kind for r in running
                                                       for f in r.risks}
