"""Leadership lease with a fencing epoch, on real SQLite and PostgreSQL: one holder at a time,
take-over only after expiry (with a new epoch), a paused old leader can neither renew nor write
under the fence."""

from __future__ import annotations

import threading

from sqlalchemy import func, insert, literal, select

from ulm.store import Store
from ulm.store import schema as t
from ulm.store.lease import SAFETY_S, Lease, holder


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


def test_the_fence_refuses_a_stale_epoch(store: Store) -> None:
    clock = Clock()
    a = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock)
    a.acquire()
    old = Lease(store.engine, "ctl-a:1", ttl_s=15, clock=clock, epoch=a.epoch)

    def guarded_write(lease: Lease, seq: int) -> int:
        with store.engine.begin() as c:
            stmt = insert(t.locks).from_select(
                ["name", "owner", "expires_at"],
                select(literal(f"probe{seq}"), literal(lease.owner), literal(0.0))
                .where(lease.fence()))
            c.execute(stmt)
            # rowcount of INSERT ... SELECT is -1 on psycopg: count what landed instead
            return int(c.execute(select(func.count()).select_from(t.locks)
                                 .where(t.locks.c.name == f"probe{seq}")).scalar_one())

    assert guarded_write(a, 1) == 1  # the leader writes
    clock.now += 16
    b = Lease(store.engine, "ctl-b:2", ttl_s=15, clock=clock)
    assert b.acquire() == 2
    assert guarded_write(old, 2) == 0  # the old leader's write under its epoch: nothing
    assert guarded_write(b, 3) == 1


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
