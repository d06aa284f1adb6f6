"""Leadership: a lease in the store with a fencing epoch, so that two controllers on one store
never both act.

One row per lease name: `owner`, `epoch`, `expires_at`. Every change is one conditional
UPDATE, atomic on SQLite and PostgreSQL alike, so there is no read-then-write race:

* `acquire` takes the lease if it is free, expired, or already ours; taking it from someone
  else (or after a gap) increments the epoch. It returns the epoch, or None.
* `renew` extends it only while owner *and* epoch are still ours: a controller that was paused
  past its lease and lost it to a standby can never renew the standby's lease.
* `Lease.fence` is the condition every journaled action is written under (see
  `Store.intent`): an INSERT guarded by "this owner holds this epoch, unexpired". A paused old
  leader that wakes up and tries to act writes nothing, and so starts nothing.

Expiry uses the controllers' clocks (seconds since the epoch, like every time in the store);
`ulm doctor` checks the clocks of controller and database agree. A leader also stops acting on
its own when its last successful renewal is about to run out (`Lease.valid`), before any
standby may take over, even if it cannot reach the database to learn it lost the lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, case, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ulm.store import schema as t

#: A leader gives up this long before its lease runs out by its own clock: the margin for
#: the time a renewal takes and for clock skew between controllers.
SAFETY_S = 2.0


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

    def acquire(self) -> int | None:
        now = self.clock()
        lt = t.leases
        with self.engine.begin() as c:
            taken = c.execute(
                update(lt).where(lt.c.name == self.name,
                                 (lt.c.owner == self.owner) | (lt.c.expires_at < now))
                .values(epoch=case((and_(lt.c.owner == self.owner,
                                         lt.c.epoch == (self.epoch or -1)), lt.c.epoch),
                                   else_=lt.c.epoch + 1),
                        owner=self.owner, expires_at=now + self.ttl_s, renewed_at=now)).rowcount
            if not taken:
                try:
                    with c.begin_nested():
                        c.execute(insert(lt).values(name=self.name, owner=self.owner, epoch=1,
                                                    expires_at=now + self.ttl_s,
                                                    renewed_at=now))
                except IntegrityError:  # someone else holds it (or just created it)
                    return None
            self.epoch = int(c.execute(select(lt.c.epoch).where(lt.c.name == self.name))
                             .scalar_one())
        self.valid_until = now + self.ttl_s - SAFETY_S
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
            self.valid_until = now + self.ttl_s - SAFETY_S
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

    def fence(self) -> ColumnElement[bool]:
        """The SQL condition "this controller holds its epoch, unexpired", for guarded writes."""
        lt = t.leases
        return exists(select(lt.c.name).where(
            lt.c.name == self.name, lt.c.owner == self.owner,
            lt.c.epoch == (self.epoch if self.epoch is not None else -1),
            lt.c.expires_at >= self.clock()))


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    epoch: int
    expires_at: float
    renewed_at: float


def holder(engine: Engine, name: str = "leader") -> Holder | None:
    lt = t.leases
    with engine.connect() as c:
        row = c.execute(select(lt).where(lt.c.name == name)).first()
    return None if row is None else Holder(row.owner, int(row.epoch), float(row.expires_at),
                                           float(row.renewed_at))
