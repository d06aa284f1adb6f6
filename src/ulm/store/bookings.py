"""Maintenance bookings in the store (`Store` inherits these; SQL lives in the store package)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from ulm.errors import UlmError
from ulm.store import schema as t
from ulm.store.records import Booking


class Bookings:
    engine: Engine

    def book(self, host: str, start: float, end: float, power_off: bool, reason: str,
             status: str = "booked", detail: str = "", return_home: bool = False) -> int:
        with self.engine.begin() as c:
            res = c.execute(insert(t.maintenance).values(
                host=host, start=start, end=end, power_off=power_off, reason=reason,
                status=status, detail=detail, created_at=time.time(),
                return_home=return_home, home_vms=None))
            key = res.inserted_primary_key
            assert key is not None
            return int(key[0])

    def bookings(self, active_only: bool = False) -> list[Booking]:
        with self.engine.connect() as c:
            out = self._bookings(c)
        done = ("done", "cancelled")
        return [b for b in out if not active_only or b.status not in done]

    def _bookings(self, c: Connection) -> list[Booking]:
        rows = c.execute(select(t.maintenance).order_by(t.maintenance.c.start))
        return [Booking(r.id, r.host, r.start, r.end, r.power_off, r.reason, r.status, r.detail,
                        bool(r.return_home), tuple(r.home_vms or ()))
                for r in rows]

    def set_booking(self, booking: int, status: str, detail: str = "") -> None:
        with self.engine.begin() as c:
            res = c.execute(update(t.maintenance).where(t.maintenance.c.id == booking).values(
                status=status, detail=detail))
            if not res.rowcount:
                raise UlmError(f"no maintenance booking #{booking}")

    def set_home_vms(self, booking: int, vms: list[str]) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.maintenance).where(t.maintenance.c.id == booking).values(
                home_vms=vms))

    def set_booking_end(self, booking: int, end: float) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.maintenance).where(t.maintenance.c.id == booking).values(end=end))
