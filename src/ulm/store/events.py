"""The event stream's events in the store (`Store` inherits these), and the day's migrations.

The API's event bus (`ulm.api.bus`) writes every event it streams, in bulk, a batch every few
seconds, each under the id the stream gave it (the bus numbers on from the table's highest
id), so that a client reconnecting with `Last-Event-ID` after a restart is sent what it
missed from here. The `events` route reads back those that no other table keeps — a migration
started, a condition that began or ended, a leader change, what the API was asked to do
(`exclude`: the kinds History takes from plans, outcomes, bookings and power events) — newest
first, so that History shows what happened before a restart. Retention ages them
(`ulm.store.retention`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, or_, select
from sqlalchemy.engine import Connection

from ulm.store import schema as t

_e = t.events.c


@dataclass(frozen=True, slots=True)
class EventRow:
    ts: float
    kind: str
    severity: str = ""
    vm: str = ""
    host: str = ""
    src: str = ""
    dst: str = ""
    plan_id: str = ""
    text: str = ""
    body: dict[str, Any] | None = None
    id: int | None = None  # the stream's id (None: the table numbers it)

    @property
    def about(self) -> list[str]:
        """Every VM and host it concerns, once each, in that order."""
        return list(dict.fromkeys(n for n in (self.vm, self.host, self.src, self.dst) if n))

    def matches(self, kind: str, about: str) -> bool:
        return (not kind or self.kind == kind) and (not about or about in self.about)


def _where(kind: str, about: str, exclude: Collection[str] = ()) -> list[Any]:
    out: list[Any] = [_e.kind.not_in(list(exclude))] if exclude else []
    if kind:
        out.append(_e.kind == kind)
    if about:
        out.append(or_(_e.vm == about, _e.host == about, _e.src == about, _e.dst == about))
    return out


class Events:
    engine: Engine

    def add_events(self, rows: Sequence[EventRow]) -> None:
        """One INSERT for the whole batch (two if only some have their id), in one
        transaction."""
        if not rows:
            return
        numbered = [r for r in rows if r.id is not None]
        with self.engine.begin() as c:
            for batch, ids in ((numbered, True), ([r for r in rows if r.id is None], False)):
                if batch:
                    c.execute(insert(t.events), [_values(r, ids) for r in batch])

    def migrations_since(self, since: float) -> int:
        """Migrations ULM started since `since` (the journal's move intents)."""
        with self.engine.connect() as c:
            return migrations_since(c, since)

    def max_event_id(self) -> int:
        """The highest id in the table (0: none): the bus numbers on from it."""
        with self.engine.connect() as c:
            return int(c.execute(select(func.max(_e.id))).scalar_one() or 0)

    def events_after(self, after: int, limit: int = 1000) -> list[EventRow]:
        """The events with an id above `after`, oldest first: what a stream that reconnects
        missed."""
        with self.engine.connect() as c:
            rows = c.execute(select(t.events).where(_e.id > after).order_by(_e.id)
                             .limit(limit))
            return [_row(r) for r in rows]

    def events(self, limit: int, offset: int = 0, kind: str = "", about: str = "",
               exclude: Collection[str] = ()) -> tuple[list[EventRow], int]:
        """The newest `limit` events after skipping `offset` (newest first), `kind` and
        `about` (a VM or host name) narrowing them down, none of the kinds in `exclude`; and
        how many match in all."""
        where = _where(kind, about, exclude)
        with self.engine.connect() as c:
            rows = c.execute(select(t.events).where(*where)
                             .order_by(_e.ts.desc(), _e.id.desc()).offset(offset).limit(limit))
            out = [_row(r) for r in rows]
            total = int(c.execute(select(func.count()).select_from(t.events)
                                  .where(*where)).scalar_one())
        return out, total


def _values(r: EventRow, with_id: bool) -> dict[str, Any]:
    return {**({"id": r.id} if with_id else {}), "ts": r.ts, "kind": r.kind[:64],
            "severity": r.severity[:16], "vm": r.vm[:255], "host": r.host[:255],
            "src": r.src[:255], "dst": r.dst[:255], "plan_id": r.plan_id[:64], "text": r.text,
            "body": r.body or {}}


def _row(r: Any) -> EventRow:
    return EventRow(r.ts, r.kind, r.severity, r.vm, r.host, r.src, r.dst, r.plan_id, r.text,
                    dict(r.body or {}), r.id)


def migrations_since(c: Connection, since: float) -> int:
    """Migrations ULM started since `since`: the journal's move entries (one is written right
    before each migration starts, whatever its end; stamped by the wall clock)."""
    j = t.journal.c
    return int(c.execute(select(func.count()).select_from(t.journal).where(
        j.kind == "move", j.ts >= since)).scalar_one())


def moves_by_vm(c: Connection, since: float, took_since: float
                ) -> dict[str, tuple[int, float | None]]:
    """Per VM: its migrations ULM started since `since` (the journal's move entries, as
    `migrations_since` counts them) and how long its last completed one since `took_since`
    took (its outcome, started to finished): what the anti-thrash gates read. Both through
    indexed columns (the journal's kind and time, the outcomes' plan); a day's moves are few,
    and the VM name is read from the entry's payload here, not in SQL, so the same code runs
    on SQLite and PostgreSQL."""
    j, o = t.journal.c, t.outcomes.c
    out: dict[str, tuple[int, float | None]] = {}
    plans: set[str] = set()
    for payload, ts, plan in c.execute(select(j.payload, j.ts, j.plan_id).where(
            j.kind == "move", j.ts >= min(since, took_since))):
        plans.add(plan)
        vm = str(payload.get("vm", "")) if isinstance(payload, dict) else ""
        if vm and ts >= since:
            out[vm] = (out.get(vm, (0, None))[0] + 1, None)
    if not plans:
        return out
    for vm, start, end in c.execute(
            select(o.vm, o.started_at, o.finished_at).where(
                o.plan_id.in_(sorted(plans)), o.kind == "move", o.status == "done",
                o.finished_at >= took_since).order_by(o.finished_at)):
        out[vm] = (out.get(vm, (0, None))[0], max(float(end) - float(start), 0.0))
    return out
