"""Each VM's moves today and its last migration's duration, read from the journal and the
outcomes into the snapshot (the anti-thrash gates), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from tests.store.test_store import collection
from ulm.executor import Outcome, Status
from ulm.model import Move, Plan, PowerOn
from ulm.store import Store


def test_the_snapshot_carries_each_vms_moves_today_and_last_duration(store: Store) -> None:
    now = time.time()
    store.add_collection(collection(now - 20, {"a": 0.2, "b": 0.2, "c": 0.2},
                                    {"a": "h1", "b": "h1", "c": "h2"}))
    first, second = Move("a", "h1", "h2", "test", 512.0), Move("a", "h2", "h1", "test", 512.0)
    other = Move("b", "h1", "h2", "test", 512.0)
    pid = store.save_plan(Plan("s", "p", now, (first, second, other)), "enforce")
    for seq, m in enumerate((first, second, other), 1):
        store.update(store.intent(pid, seq, m), "done" if m is not other else "failed")
    store.intent(pid, 4, PowerOn("h2", "wake"))  # a power action moves no VM
    store.record_outcome(pid, 1, Outcome(first, Status.DONE, "", now - 300, now - 250))
    store.record_outcome(pid, 2, Outcome(second, Status.DONE, "", now - 100, now - 70))
    store.record_outcome(pid, 3, Outcome(other, Status.FAILED, "x", now - 60, now - 50))
    snap = store.snapshot(now, 4, 60.0, day_start=now - 600)
    vms = {v.name: v for v in snap.vms}
    assert (vms["a"].moves_today, vms["a"].last_move_s) == (2, 30.0)  # the last one: 30 s
    assert (vms["b"].moves_today, vms["b"].last_move_s) == (1, None)  # started, not done
    assert (vms["c"].moves_today, vms["c"].last_move_s) == (0, None)
    tomorrow = store.snapshot(now, 4, 60.0, day_start=now + 1)
    a = {v.name: v for v in tomorrow.vms}["a"]
    assert (a.moves_today, a.last_move_s) == (0, 30.0)  # yesterday's duration still counts
