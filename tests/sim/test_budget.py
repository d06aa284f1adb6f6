"""The daily migration budget in the simulator: the same scheduler, the day's count carried by
each snapshot, a fresh budget after midnight in the policy's timezone."""

from __future__ import annotations

from typing import Any

from tests.sim.conftest import cut
from ulm.policy import Policy, resolve_policy
from ulm.sim.engine import Engine, SimConfig
from ulm.sim.traces import Trace
from ulm.snapshot import Snapshot

START = 1_764_626_400.0  # 2025-12-01 22:00 UTC: the 4 simulated hours cross midnight
MIDNIGHT = START + 7200


class Watched(Engine):
    """The engine, keeping what each round's snapshot said of the day's migrations."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: list[tuple[float, int]] = []

    def snapshot(self, k: int, t: float, req: Any) -> Snapshot:
        snap = super().snapshot(k, t, req)
        self.seen.append((snap.taken_at, snap.migrations_today))
        return snap


def _budget(n: int | None) -> Policy:
    p = resolve_policy("thr-mmt-0.8")
    return p.model_copy(update={"gates": p.gates.model_copy(
        update={"max_migrations_per_day": n})})


def test_the_simulator_keeps_to_the_days_budget_and_starts_afresh_at_midnight(
        day0303: Trace) -> None:
    trace = cut(day0303, 1052, 49)
    free = Watched(trace, _budget(None), SimConfig(mode="honest", start=START)).run()
    assert free.migrations > 100  # what the day would take without a budget
    e = Watched(trace, _budget(20), SimConfig(mode="honest", start=START))
    r = e.run()
    before = [n for ts, n in e.seen if ts < MIDNIGHT]
    after = [n for ts, n in e.seen if ts >= MIDNIGHT]
    assert before and after
    assert before == sorted(before) and after == sorted(after)  # a count only grows in a day
    assert max(before) == 20 and after[0] == 0 and max(after) == 20  # each day: 20, no more
    assert r.migrations == 40  # both days' budgets, not one more
    assert r.migrations == max(before) + e.migrations_today
