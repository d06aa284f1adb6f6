"""Anti-thrash per VM in the simulator: the same scheduler, each VM's moves today counted by
the engine into each snapshot (a fresh count after midnight), repeat moves reported."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from tests.sim.conftest import cut
from ulm.model import Move
from ulm.policy import Policy, resolve_policy
from ulm.sim.engine import Engine, SimConfig
from ulm.sim.traces import Trace

START = 1_764_626_400.0  # 2025-12-01 22:00 UTC: the 4 simulated hours cross midnight
MIDNIGHT = START + 7200


class Counted(Engine):
    """The engine, keeping (day, VM) of every move it starts."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.moved: Counter[tuple[bool, str]] = Counter()

    def execute(self, moves: tuple[Move, ...]) -> None:
        now = self.clock.now() + self.start
        self.moved.update((now >= MIDNIGHT, m.vm) for m in moves)
        super().execute(moves)


def _gates(**keys: float) -> Policy:
    p = resolve_policy("thr-mmt-0.8")
    return p.model_copy(update={"gates": p.gates.model_copy(update=keys)})


def test_a_vm_moves_at_most_k_times_a_day_and_repeat_moves_fall(day0303: Trace) -> None:
    trace = cut(day0303, 1052, 49)
    free = Counted(trace, _gates(), SimConfig(mode="honest", start=START))
    r_free = free.run()
    assert max(free.moved.values()) >= 2  # without a limit some VMs move again
    assert r_free.extra["repeat_moves"] == sum(n - 1 for n in free.moved.values())
    capped = Counted(trace, _gates(max_moves_per_vm_per_day=1),
                     SimConfig(mode="honest", start=START))
    r = capped.run()
    assert max(capped.moved.values()) == 1  # per VM and day
    again = {vm for (day, vm) in capped.moved if day} & {vm for (day, vm) in capped.moved
                                                         if not day}
    assert again  # a new day: a VM moved before midnight may move again
    assert r.extra["repeat_moves"] == 0 < r_free.extra["repeat_moves"]
    assert np.all(capped.vm_moves_today <= 1)
