"""Placement and detection compare a load with a limit the same way (`limits.exceeds`).

The bug this guards against: placement accepted a destination up to the threshold plus 1e-9,
the detector flagged anything above the threshold, so a host filled to exactly 24 of 32 cores
(0.75) — which floating point sums to 24.000000000000004 — was overloaded the next round, and
relief moved a VM off it again: a ping-pong seed.
"""

from __future__ import annotations

import numpy as np

from tests.builders import host, policy, snap, vm
from tests.core.test_properties import apply
from ulm.model import Move
from ulm.scheduler import schedule, working
from ulm.scheduler.detectors import valid_length
from ulm.scheduler.limits import CLOUDSIM_TOLERANCE, TOLERANCE, exceeds, exceeds_each
from ulm.scheduler.relieve import overloaded_hosts
from ulm.scheduler.state import State, _scan_params
from ulm.snapshot import Snapshot

AT_THRESHOLD = 1.1 + 19.8 + 3.1  # 24 of 32 cores = 0.75, in floating point just above
POLICY = """
[overload]
threshold = 0.75
sustain = 3
window = 4
[selection]
rule = "mmt"
[placement]
strategy = "pabfd"
"""


def test_the_sum_is_just_above_the_threshold_in_floating_point() -> None:
    assert AT_THRESHOLD / 32 > 0.75  # the premise: 0.7500000000000001
    assert AT_THRESHOLD == 24.000000000000004


def test_exceeds_ignores_rounding_but_not_load() -> None:
    assert not exceeds(AT_THRESHOLD, 32.0, 0.75, TOLERANCE)
    assert exceeds(24.001, 32.0, 0.75, TOLERANCE)
    assert not exceeds(23.0, 32.0, 0.75, TOLERANCE)
    assert exceeds(AT_THRESHOLD, 32.0, 0.75, CLOUDSIM_TOLERANCE)  # CloudSim compares exactly
    assert not exceeds(0.0, 0.0, 1.0, TOLERANCE)  # nothing used of nothing is not over
    assert exceeds(1.0, 0.0, 1.0, TOLERANCE)
    assert exceeds_each(np.array([AT_THRESHOLD, 24.001]), np.full(2, 32.0), np.full(2, 0.75),
                        TOLERANCE).tolist() == [False, True]


def test_the_detectors_do_not_flag_a_host_at_the_threshold() -> None:
    """The compiled detector, at the threshold up to rounding."""
    pol = policy(POLICY)
    hist = np.full((2, 4), AT_THRESHOLD)
    hist[1] += 0.01  # really above
    cap = np.full(2, 32.0)
    length = valid_length(hist)
    S = (hist[:, -1].copy(), hist, np.zeros(2), np.zeros(2, np.int64), np.zeros(2, np.int64),
         length, np.zeros((0, 2)), np.zeros(2), np.zeros(0, np.int64), np.zeros(2))
    assert working.hosts_over(np.arange(2), _scan_params(pol), S, cap).tolist() == [False, True]


def cluster() -> Snapshot:
    hosts = [host("hot", cpu=32.0, cores=32), host("cool", cpu=32.0, cores=32),
             host("spare", cpu=16.0, cores=16)]  # room, but best fit prefers "cool"
    vms = [vm("a", on="cool", load=1.1), vm("b", on="cool", load=19.8),
           vm("c", on="hot", load=3.1, mem=512.0),  # the least memory: it leaves first (MMT)
           vm("d", on="hot", load=22.0, size=24.0, mem=8192.0)]
    return snap(hosts, vms)


def test_a_destination_filled_to_the_threshold_is_not_overloaded_next_round() -> None:
    """Before the fix: "overloaded hosts 1 -> 1", and the next round, with the load
    unchanged, flagged "cool" and moved c on to "spare"."""
    first = cluster()
    pol = policy(POLICY)
    plan = schedule(first, pol, 0.0)
    assert [(m.vm, m.src, m.dst) for m in plan.moves] == [("c", "hot", "cool")]
    assert plan.efficacy is not None
    assert (plan.efficacy.hosts_overloaded_before, plan.efficacy.hosts_overloaded_after) == (1, 0)
    nxt = apply(first, plan, 0.0)
    st = State.of(nxt, pol, 300.0)
    assert st.host_cur[nxt.host_index["cool"]] == AT_THRESHOLD  # the premise, next round
    assert not overloaded_hosts(st).any()
    again = schedule(nxt, pol, 300.0)
    assert not [a for a in again.actions if isinstance(a, Move)]
    assert again.efficacy is not None and again.efficacy.hosts_overloaded_before == 0


def test_placement_does_not_create_memory_pressure() -> None:
    """Memory pressure is a detector too (`memory_threshold`): before, placement checked only
    that the reserved memory fits, so "full" took a VM to 100 % memory in use, above 90 %,
    and was overloaded the next round ("overloaded hosts 1 -> 1")."""
    pol = policy('[overload]\nthreshold = 0.75\nsustain = 1\nwindow = 1\n'
                 'memory_threshold = 0.9\n[selection]\nrule = "largest"\n')
    hosts = [host("hot", cpu=8.0, mem=16384.0), host("full", cpu=8.0, mem=16384.0),
             host("roomy", cpu=8.0, mem=16384.0)]  # as good for CPU; listed after
    vms = [vm("a", on="hot", load=4.0, mem=4096.0, mem_used=4096.0),
           vm("a2", on="hot", load=3.0, mem=1024.0, mem_used=1024.0),
           vm("b", on="full", load=1.0, mem=12288.0, mem_used=12288.0)]
    first = snap(hosts, vms)
    plan = schedule(first, pol, 0.0)
    assert [(m.vm, m.dst) for m in plan.moves] == [("a", "roomy")]  # not onto "full"
    assert plan.efficacy is not None and plan.efficacy.hosts_overloaded_after == 0
    nxt = apply(first, plan, 0.0)
    assert not overloaded_hosts(State.of(nxt, pol, 300.0)).any()
    full = nxt.host_index["full"]
    assert exceeds(16384.0, float(nxt.host_mem[full]), 0.9, TOLERANCE)  # would have been
