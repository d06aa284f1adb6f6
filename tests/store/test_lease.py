"""Leadership lease with a fencing epoch, on real SQLite and PostgreSQL: one holder at a time,
take-over only after expiry (with a new epoch), a paused old leader can neither renew nor write
a journal intent (so its executor starts nothing)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from ulm.clock import SimClock
from ulm.drivers.sim import SimCluster
from ulm.executor import Cause, Executor, Fenced, Limits, Status
from ulm.model import Move, Plan
from ulm.store import Store
from ulm.store import schema as t
from ulm.store.lease import SAFETY_S, Lease, holder
from ulm.store.records import action_dict
from ulm.store.store import fenced_intent


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_one_leader_then_takeover_after_expiry_with_a_new_epoch(store: Store) -> None:
    clock = Clock()
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    b = Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock)
    assert a.acquire() == 1
    assert b.acquire() is None  # a holds it
    clock.now += 10
    assert a.renew() and b.acquire() is None  # renewed: still a's
    clock.now += 14
    assert b.acquire() is None  # 14 s after the renewal: not yet expired
    clock.now += 2
    assert b.acquire() == 2  # expired: b takes it, with a new epoch
    assert not a.renew()  # a (paused, now awake) cannot renew b's lease ...
    assert not a.valid()  # ... and knows it must not act
    h = holder(store.engine)
    assert h is not None and (h.owner, h.epoch) == ("ctl-b:2", 2)


def test_a_leader_stops_trusting_its_lease_before_it_expires(store: Store) -> None:
    clock = Clock()
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    clock.now += 15 - SAFETY_S - 0.1
    assert a.valid()
    clock.now += 0.2  # no renewal came through (database cut): it gives up on its own,
    assert not a.valid()  # while the lease has SAFETY_S left before a standby may take it
    b = Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock)
    assert b.acquire() is None


MOVE = Move("web1", "h1", "h2", "test")


def epochs(store: Store) -> dict[str, int | None]:
    with store.engine.connect() as c:
        return {r.plan_id: r.epoch for r in c.execute(select(t.journal))}


def test_the_journal_refuses_an_intent_under_a_stale_epoch(store: Store) -> None:
    clock = Clock(time.time())
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    store.fence = a
    store.intent("p-a", 1, MOVE)  # the leader writes, under its epoch
    clock.now += 16  # a is paused past its lease: b takes over
    b = Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock)
    assert b.acquire() == 2
    # a wakes up with a clock that says it may still act: the database refuses it all the same
    a.valid_until = clock.now + 10
    with pytest.raises(Fenced) as err:
        store.intent("p-a", 2, MOVE)
    assert err.value.epoch == 1 and "another controller leads now" in str(err.value)
    store.fence = b
    store.intent("p-b", 1, MOVE)
    assert epochs(store) == {"p-a": 1, "p-b": 2}  # each entry carries its leader's epoch
    assert [e.plan_id for e in store.open_entries()] == ["p-a", "p-b"]


def test_a_twin_writes_under_its_originals_fence(store: Store) -> None:
    """The background executor's threads journal through `twin()`: they are fenced too, by
    whatever lease the original holds now (set before or after the twin was made)."""
    twin = store.twin()
    clock = Clock(time.time())
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    store.fence = a
    twin.intent("p-a", 1, MOVE)
    clock.now += 16
    assert Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock).acquire() == 2
    a.valid_until = clock.now + 10
    with pytest.raises(Fenced, match="another controller leads now"):
        twin.intent("p-a", 2, MOVE)
    assert epochs(store) == {"p-a": 1}
    twin.engine.dispose()


def test_a_lease_run_out_by_its_own_clock_writes_nothing(store: Store) -> None:
    clock = Clock(time.time())
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    store.fence = a
    clock.now += 15 - a.safety_s + 0.1  # no renewal came through (the database cut off)
    with pytest.raises(Fenced, match="its lease ran out before it was renewed"):
        store.intent("p-a", 1, MOVE)
    assert epochs(store) == {}


def test_a_fenced_executor_starts_no_migration(store: Store) -> None:
    clock = Clock(time.time())
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    clock.now += 16
    assert Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock).acquire() == 2
    a.valid_until = clock.now + 10
    store.fence = a
    sim = SimCluster(SimClock(1000.0), {"web1": "h1", "db": "h1"}, {"web1": 625.0, "db": 625.0})
    ex = Executor(sim, sim.clock, store, Limits(max_concurrent=2, max_per_host=2))
    res = ex.execute(Plan("snap", "pol", 0.0, (MOVE, Move("db", "h1", "h3", "test"))), "p-a")
    assert [(o.status, o.cause) for o in res.outcomes] == [(Status.SKIPPED, Cause.FENCED),
                                                           (Status.SKIPPED, Cause.STOPPING)]
    assert sim.migrations == 0 and sim.locate("web1") == ["h1"]
    assert epochs(store) == {}  # no intent: a standby's recover() has nothing to reconcile


def test_a_takeover_waits_for_a_fenced_insert_in_flight(store: Store) -> None:
    """SQLite: the insert holds the writer lock; PostgreSQL: it share-locks the lease row.
    Either way the standby takes over after the insert commits, and then finds the entry."""
    clock = Clock(time.time())
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    b = Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock)
    taken: list[int | None] = []
    waiter = threading.Thread(target=lambda: taken.append(b.acquire()))
    values = dict(plan_id="p-a", seq=1, kind="move", payload=action_dict(MOVE), state="intent",
                  detail="", ts=clock.now, updated_at=clock.now)
    with store.engine.connect() as c:
        tx = c.begin()
        c.execute(fenced_intent(a, values))  # what Store.intent runs, held open
        clock.now += 16  # a's lease runs out while its insert is in flight
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive()  # the take-over waits for it
        tx.commit()
    waiter.join(30)
    assert taken == [2]
    assert [(e.plan_id, e.state) for e in store.open_entries()] == [("p-a", "intent")]


def test_racing_acquires_elect_exactly_one(store: Store) -> None:
    clock = Clock()
    won: list[str] = []
    start = threading.Barrier(8)

    def contender(i: int) -> None:
        lease = Lease(store.engine, f"ctl-{i}:{i}", ttl_s=15, clock=clock)
        start.wait()
        try:
            if lease.acquire() is not None:
                won.append(lease.owner)
        except Exception as exc:  # SQLite may say "database is locked": that is a loss
            assert "locked" in str(exc)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(won) == 1
    h = holder(store.engine)
    assert h is not None and h.owner == won[0] and h.epoch == 1


def test_release_lets_the_standby_in_at_once(store: Store) -> None:
    clock = Clock()
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    a.release()
    assert Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock).acquire() == 2
