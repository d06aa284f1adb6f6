"""The daily migration budget in the daemon's own loop: enforce mode on SimCluster, the count
read from the store's journal each round, the plan stopping where the budget does."""

from __future__ import annotations

from pathlib import Path

from tests.daemon.fakes import HOT_TOML, world
from ulm.daemon import Mode
from ulm.policy import parse_policy
from ulm.problems import ProblemKind

PLACEMENT = {"a1": "hA", "a2": "hA", "a3": "hA", "b1": "hB", "b2": "hB", "b3": "hB",
             "c1": "hC", "d1": "hD"}
CPU = {"a1": 1.5, "a2": 1.4, "a3": 1.3, "b1": 1.5, "b2": 1.4, "b3": 1.3, "c1": 0.1, "d1": 0.1}


def test_the_daemon_starts_no_more_migrations_a_day_than_the_budget(tmp_path: Path) -> None:
    policy = parse_policy(HOT_TOML + "max_migrations_per_day = 1\n", "<budget>")
    w = world(tmp_path, PLACEMENT, hosts=("hA", "hB", "hC", "hD"), mode=Mode.enforce,
              policy=policy, vm_cpu=CPU, rounds=8)
    results = w.rounds(8)
    moved = {v for v, h in w.cluster.placement.items() if h != PLACEMENT[v]}
    assert len(moved) == 1  # two hosts were hot; the day's one migration relieved one
    assert w.store.snapshot(w.clock.now(), 4, 60.0).migrations_today == 1
    last = results[-1].plan
    assert last is not None and last.actions == ()
    spent = [p for p in last.issues if p.kind is ProblemKind.DAY_BUDGET]
    assert spent and spent[0].used == 1 and spent[0].limit == 1
    assert any(d.outcome == "kept: today's migration budget used up" for d in last.decisions)
