"""Loading the compiled kernels once per process, before any clock starts."""

from __future__ import annotations

import numpy as np

from ulm.model import HostState
from ulm.policy import Policy
from ulm.scheduler.core import check_move, schedule
from ulm.scheduler.correlation import r2_each
from ulm.scheduler.drain import check_drain
from ulm.scheduler.selection import cost
from ulm.scheduler.state import State
from ulm.snapshot import Snapshot


def load_compiled() -> None:
    """Loads the compiled kernels (scan, working, loops, tally) by planning a tiny cluster.

    numba loads them from its cache on first use (a few tenths of a second; after an install
    or an edit it compiles them, ~30 s, once). A one-off per process, like an import: the
    simulator calls this before its clock starts, so that a run's wall time is the run's.
    """
    hot = np.array([[0.5] * 9 + [1.0], [0.1] * 10, [0.1] * 10])
    snap = Snapshot(
        taken_at=0.0, host_names=("a", "b"), host_cpu=np.array([1000.0, 1000.0]),
        host_mem=np.array([4096.0, 4096.0]), host_cores=np.array([4, 4], np.int64),
        host_state=(HostState.ON, HostState.ON), vm_names=("x", "y", "z"),
        vm_host=np.array([0, 0, 1], np.int64), vm_cpu_size=np.full(3, 1000.0),
        vm_mem_size=np.full(3, 512.0), vm_cpu=hot[:, -1] * 1000, vm_mem=np.full(3, 256.0),
        vm_history=hot * 1000)
    for rule, compat in (("lr", "cloudsim"), ("threshold", "none")):
        pol = Policy.model_validate({
            "overload": {"detector": rule}, "placement": {"strategy": "pabfd"},
            "consolidation": {"enabled": True}, "balance": {"enabled": True}, "compat": compat})
        for move in schedule(snap, pol, 0.0).moves[:1]:
            check_move(snap, pol, move)
        check_drain(snap, pol, "b", 0.0)  # an evacuation: `loops.drain`
    r2_each(np.array([[1.0, 2.0, 4.0, 3.0], [2.0, 1.0, 3.0, 5.0]]), np.zeros(1, np.int64))  # LR-MC
    cost(State.of(snap, pol, 0.0), 0, [0, 1])  # "cost" from Python: `loops._cost_pick`
