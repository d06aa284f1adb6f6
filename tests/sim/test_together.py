"""Keep-together groups in the simulator: the same scheduler on real PlanetLab load. Pairs of
VMs start on different hosts (the trace's placement ignores the rule); the first plans join
each pair, every later plan keeps it whole, and no pair is moved back and forth."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from tests.sim.conftest import cut
from ulm.model import Move
from ulm.policy import resolve_policy
from ulm.sim.engine import Engine, SimConfig
from ulm.sim.traces import Trace
from ulm.snapshot import Snapshot

PAIRS = 10


class Watched(Engine):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reasons: Counter[str] = Counter()
        self.last: Snapshot | None = None

    def execute(self, moves: tuple[Move, ...]) -> None:
        self.reasons.update(m.reason.split(":")[0] for m in moves)
        super().execute(moves)

    def snapshot(self, k: int, t: float, req: Any) -> Snapshot:
        self.last = super().snapshot(k, t, req)
        return self.last


def test_pairs_are_joined_and_stay_together(day0303: Trace) -> None:
    trace = cut(day0303, 300, 24)
    names = trace.vm_names
    # the engine starts VMs 2k and 2k + 1 on one host: 2k + 1 and 2k + 2 are on two
    groups = [[names[2 * k + 1], names[2 * k + 2]] for k in range(PAIRS)]
    base = resolve_policy("thr-mmt-0.8")
    pol = base.model_copy(update={"constraints": base.constraints.model_copy(
        update={"keep_together": tuple(tuple(g) for g in groups)})})
    engine = Watched(trace, pol, SimConfig(mode="honest"))
    engine.run()
    snap = engine.last
    assert snap is not None
    where = np.where(snap.vm_migrating_to >= 0, snap.vm_migrating_to, snap.vm_host)
    for g in groups:
        assert len({int(where[snap.vm_index[n]]) for n in g}) == 1, g
    # each pair needs one move to join, and no later plan splits one to join it again
    assert engine.reasons["repair"] == PAIRS
