"""Leadership: a lease in the store with a fencing epoch, so that two controllers on one store
never both act. It is the daemon's only lock (`ulm.lockkeeper` renews it).

One row per lease name: `owner`, `epoch`, `expires_at`, `since`. Every change is one
conditional UPDATE, atomic on SQLite and PostgreSQL alike, so there is no read-then-write race:

* `acquire` takes the lease if it is free, expired, or already ours; taking it from someone
  else (or after a gap) increments the epoch. It returns the epoch, or None.
* `renew` extends it only while owner *and* epoch are still ours: a controller that was paused
  past its lease and lost it to a standby can never renew the standby's lease.
* `Lease.guard` is the condition every journaled action is written under (`Store.intent`): an
  INSERT ... SELECT from this lease's row, "this owner holds this epoch, unexpired", which
  on PostgreSQL also share-locks the row, so a take-over waits for the insert to commit (and
  then finds it in the journal) or the insert sees the new epoch and writes nothing. A
  paused old leader that wakes up writes nothing, and so starts nothing.
* A release expires the row but keeps it: epochs only ever grow.

Expiry uses the controllers' clocks (seconds since the epoch, like every time in the store);
`ulm doctor` checks the clocks of controller and database agree. A leader also stops acting on
its own when its last successful renewal is about to run out (`Lease.valid`), before any
standby may take over, even if it cannot reach the database to learn it lost the lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Row, Select, and_, case, delete, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import ReturningInsert

from ulm.store import schema as t

#: A leader gives up this long before its lease runs out by its own clock (a quarter of the
#: lease when that is shorter): the margin for a renewal's round trip and for clock skew.
SAFETY_S = 2.0

#: Rows named so are standbys saying they wait (`ulm status`), not leases anyone holds.
STANDBY = "standby:"


@dataclass
class Lease:
    engine: Engine
    owner: str
    ttl_s: float = 15.0
    name: str = "leader"
    clock: Callable[[], float] = time.time
    epoch: int | None = None
    #: until when, by this controller's clock, it may act (last renewal + ttl - safety)
    valid_until: float = field(default=float("-inf"))

    @property
    def safety_s(self) -> float:
        return min(SAFETY_S, self.ttl_s / 4)

    def acquire(self) -> int | None:
        return self._take((self.owner, self.epoch or -1), expired=True)

    def take_over(self, dead_owner: str) -> int | None:
        """Takes the lease from a holder known to be dead (same machine, process gone) at
        once, with a new epoch, instead of waiting for it to expire."""
        return self._take((dead_owner, -2), expired=False)

    def _take(self, mine: tuple[str, int], expired: bool) -> int | None:
        now = self.clock()
        lt = t.leases
        same = and_(lt.c.owner == mine[0], lt.c.epoch == mine[1])
        free = (lt.c.owner == mine[0]) | (lt.c.expires_at < now) if expired \
            else lt.c.owner == mine[0]
        with self.engine.begin() as c:
            taken = c.execute(
                update(lt).where(lt.c.name == self.name, free)
                .values(epoch=case((same, lt.c.epoch), else_=lt.c.epoch + 1),
                        since=case((same, lt.c.since), else_=now),
                        owner=self.owner, expires_at=now + self.ttl_s, renewed_at=now)).rowcount
            if not taken:
                if not expired:
                    return None
                try:
                    with c.begin_nested():
                        c.execute(insert(lt).values(name=self.name, owner=self.owner, epoch=1,
                                                    expires_at=now + self.ttl_s,
                                                    renewed_at=now, since=now))
                except IntegrityError:  # someone else holds it (or just created it)
                    return None
            self.epoch = int(c.execute(select(lt.c.epoch).where(lt.c.name == self.name))
                             .scalar_one())
        self.valid_until = now + self.ttl_s - self.safety_s
        return self.epoch

    def renew(self) -> bool:
        """True while this controller still holds its epoch; False once it lost it (then it
        must stop acting at once). A database error propagates: the caller decides, and
        `valid` runs out on its own."""
        if self.epoch is None:
            return False
        now = self.clock()
        lt = t.leases
        with self.engine.begin() as c:
            ok = c.execute(update(lt).where(lt.c.name == self.name, lt.c.owner == self.owner,
                                            lt.c.epoch == self.epoch)
                           .values(expires_at=now + self.ttl_s, renewed_at=now)).rowcount == 1
        if ok:
            self.valid_until = now + self.ttl_s - self.safety_s
        else:
            self.epoch, self.valid_until = None, float("-inf")
        return ok

    def release(self) -> None:
        """Gives the lease up at once (a clean stop): the standby need not wait for expiry."""
        if self.epoch is None:
            return
        lt = t.leases
        with self.engine.begin() as c:
            c.execute(update(lt).where(lt.c.name == self.name, lt.c.owner == self.owner,
                                       lt.c.epoch == self.epoch)
                      .values(expires_at=self.clock() - 1.0))
        self.epoch, self.valid_until = None, float("-inf")

    def valid(self) -> bool:
        return self.epoch is not None and self.clock() < self.valid_until

    def guard(self, rows: Select[tuple[object, ...]]) -> Select[tuple[object, ...]]:
        """`rows` (a SELECT of literals) selected from this lease's row only while this
        controller holds its epoch unexpired, the row share-locked on PostgreSQL: the source
        of a fenced INSERT ... SELECT."""
        lt = t.leases
        return (rows.select_from(lt)
                .where(lt.c.name == self.name, lt.c.owner == self.owner,
                       lt.c.epoch == (self.epoch if self.epoch is not None else -1),
                       lt.c.expires_at >= self.clock())
                .with_for_update(read=True))

    # -- standbys say they wait: one short-lived row each, for `ulm status` ------------------

    def waiting(self, ttl_s: float) -> None:
        now = self.clock()
        lt, name = t.leases, self._standby_name
        with self.engine.begin() as c:
            if not c.execute(update(lt).where(lt.c.name == name)
                             .values(expires_at=now + ttl_s, renewed_at=now)).rowcount:
                c.execute(insert(lt).values(name=name, owner=self.owner, epoch=0,
                                            expires_at=now + ttl_s, renewed_at=now, since=now))

    def done_waiting(self) -> None:
        with self.engine.begin() as c:
            c.execute(delete(t.leases).where(t.leases.c.name == self._standby_name))

    @property
    def _standby_name(self) -> str:
        return (STANDBY + self.owner)[:64]


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    epoch: int
    expires_at: float
    renewed_at: float
    since: float

    def live(self, now: float) -> bool:
        return self.expires_at >= now


def holder(engine: Engine, name: str = "leader") -> Holder | None:
    """The lease's row as it is (possibly expired or released: see `Holder.live`)."""
    lt = t.leases
    with engine.connect() as c:
        row = c.execute(select(lt).where(lt.c.name == name)).first()
    return None if row is None else _holder(row)


def standbys(engine: Engine, now: float) -> list[Holder]:
    """The standbys that said they wait and have not gone quiet since."""
    lt = t.leases
    with engine.connect() as c:
        rows = c.execute(select(lt).where(lt.c.name.startswith(STANDBY), lt.c.expires_at >= now)
                         .order_by(lt.c.since)).all()
    return [_holder(r) for r in rows]


def _holder(row: Row[Any]) -> Holder:
    since = row.since if row.since is not None else row.renewed_at  # a row from before 0006
    return Holder(row.owner, int(row.epoch), float(row.expires_at), float(row.renewed_at),
                  float(since))


def fenced_intent(lease: Lease, values: Mapping[str, Any]) -> ReturningInsert[Any]:
    """INSERT INTO journal ... SELECT <values, epoch> FROM leases WHERE <this epoch holds>
    RETURNING id: no row (and no id) once another controller leads."""
    j = t.journal
    rows = select(*(literal(v, j.c[k].type) for k, v in values.items()),
                  literal(lease.epoch, j.c.epoch.type))
    return insert(j).from_select([*values, "epoch"], lease.guard(rows)).returning(j.c.id)
