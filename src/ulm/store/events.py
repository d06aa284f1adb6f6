"""The event stream's events in the store (`Store` inherits these), and the day's migrations.

The API's event bus (`ulm.api.bus`) writes the events that no other table keeps — a migration
started, a condition that began or ended, a leader change, what the API was asked to do — in
bulk, a batch every few seconds; the `events` route reads them back, newest first, so that
History shows what happened before a restart. Retention ages them (`ulm.store.retention`).
"""

from __future__ import annotations

from collections.abc import Sequence
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

    @property
    def about(self) -> list[str]:
        """Every VM and host it concerns, once each, in that order."""
        return list(dict.fromkeys(n for n in (self.vm, self.host, self.src, self.dst) if n))

    def matches(self, kind: str, about: str) -> bool:
        return (not kind or self.kind == kind) and (not about or about in self.about)


def _where(kind: str, about: str) -> list[Any]:
    out: list[Any] = []
    if kind:
        out.append(_e.kind == kind)
    if about:
        out.append(or_(_e.vm == about, _e.host == about, _e.src == about, _e.dst == about))
    return out


class Events:
    engine: Engine

    def add_events(self, rows: Sequence[EventRow]) -> None:
        """One INSERT for the whole batch, in one transaction."""
        if not rows:
            return
        with self.engine.begin() as c:
            c.execute(insert(t.events), [
                {"ts": r.ts, "kind": r.kind[:64], "severity": r.severity[:16], "vm": r.vm[:255],
                 "host": r.host[:255], "src": r.src[:255], "dst": r.dst[:255],
                 "plan_id": r.plan_id[:64], "text": r.text, "body": r.body or {}}
                for r in rows])

    def migrations_since(self, since: float) -> int:
        """Migrations ULM started since `since` (the journal's move intents)."""
        with self.engine.connect() as c:
            return migrations_since(c, since)

    def events(self, limit: int, offset: int = 0, kind: str = "", about: str = ""
               ) -> tuple[list[EventRow], int]:
        """The newest `limit` events after skipping `offset` (newest first), `kind` and
        `about` (a VM or host name) narrowing them down; and how many match in all."""
        where = _where(kind, about)
        with self.engine.connect() as c:
            rows = c.execute(select(t.events).where(*where)
                             .order_by(_e.ts.desc(), _e.id.desc()).offset(offset).limit(limit))
            out = [EventRow(r.ts, r.kind, r.severity, r.vm, r.host, r.src, r.dst, r.plan_id,
                            r.text, dict(r.body or {})) for r in rows]
            total = int(c.execute(select(func.count()).select_from(t.events)
                                  .where(*where)).scalar_one())
        return out, total


def migrations_since(c: Connection, since: float) -> int:
    """Migrations ULM started since `since`: the journal's move entries (one is written right
    before each migration starts, whatever its end; stamped by the wall clock)."""
    j = t.journal.c
    return int(c.execute(select(func.count()).select_from(t.journal).where(
        j.kind == "move", j.ts >= since)).scalar_one())
