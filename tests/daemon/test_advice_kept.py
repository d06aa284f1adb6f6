"""Advice kept while it still holds: in advise mode, rounds whose advice is the same keep one
plan (its id, READY) for the operator; an advice that changes supersedes it, and a round with
nothing to advise supersedes it too. A daemon on SimCluster, its real SQLite store, the API's
plan states."""

from __future__ import annotations

from pathlib import Path

from tests.daemon.fakes import world
from ulm.advice import seen_at
from ulm.api.views import Reader


def test_unchanged_load_keeps_one_ready_plan_and_a_change_supersedes_it(tmp_path: Path) -> None:
    # hA: a1 + a2 = 3.4 of its 4 cores (85 %, above 75 %): the largest, a1, goes to hB
    w = world(tmp_path, {"a1": "hA", "a2": "hA", "b1": "hB"}, ("hA", "hB", "hC"),
              vm_cpu={"a1": 1.8, "a2": 1.6, "b1": 0.2})
    reader = Reader(w.store, w.daemon.cfg)
    ids = [r.plan_id for r in w.rounds(6)]
    advised = [i for i in ids if i]
    assert len(advised) >= 3, ids  # sustained after a few rounds, then advised every round
    assert set(advised) == {advised[0]}  # the same advice: one plan, kept
    (only,) = w.store.plans(100)
    assert only.id == advised[0] and only.status == "proposed"
    assert [(a["vm"], a["src"], a["dst"]) for a in only.plan["actions"]] == [("a1", "hA", "hB")]
    assert seen_at(only.plan, only.created_at) > only.created_at  # refreshed by later rounds
    assert [p.state for p in reader.plans(10)] == ["READY"]

    w.source.vm_cpu["a2"] = 1.9  # now a2 is the largest: the advice changes
    (changed,) = {r.plan_id for r in w.rounds(3)}
    assert changed is not None and changed != only.id
    new = w.store.plan(changed)
    assert [(a["vm"], a["src"], a["dst"]) for a in new.plan["actions"]] == [("a2", "hA", "hB")]
    assert w.store.plan(only.id).status == "superseded"
    assert [(p.id, p.state) for p in reader.plans(10)] == [(changed, "READY"),
                                                           (only.id, "SUPERSEDED")]

    w.source.vm_cpu["a2"] = 0.5  # hA cools down: nothing to advise, the advice goes
    assert [r.plan_id for r in w.rounds(3)][-1] is None
    assert w.store.plan(changed).status == "superseded"
    assert {p.state for p in reader.plans(10)} == {"SUPERSEDED"}
