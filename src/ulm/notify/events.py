"""What ULM tells people about: one small, typed record per event, rendered to text at the edge.

An `Event` says what happened as data — its `Kind`, `Severity`, the host, VM and plan it is
about, measured figures in `data` — and `text()` renders the one line people read. The daemon,
the executor and `Conditions` produce them (`ulm.notify.wire`); the API's event stream, the
dashboard, webhooks and e-mail consume them. Nobody branches on the text.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ulm.redact import redact


class Severity(enum.IntEnum):
    debug = 0  # the stream only (every round): no notification filter reaches it
    info = 10
    warning = 20
    error = 30
    critical = 40


class Kind(enum.StrEnum):
    round = "round"  # a round ended (the dashboard refreshes)
    plan_made = "plan_made"
    migration_started = "migration_started"
    migration_done = "migration_done"
    migration_failed = "migration_failed"
    migration_aborted = "migration_aborted"  # at its deadline or the shutdown grace's end
    migration_skipped = "migration_skipped"
    power_started = "power_started"
    power_on = "power_on"
    power_off = "power_off"
    wake_failed = "wake_failed"
    power_failed = "power_failed"  # a power-off that failed
    power_skipped = "power_skipped"
    host_stale = "host_stale"
    source_silent = "source_silent"
    daemon_degraded = "daemon_degraded"  # the store takes no writes (or the lock is unsure)
    plan_problem = "plan_problem"
    vm_gone = "vm_gone"
    vm_state = "vm_state"  # a VM is paused or crashed (ULM leaves it alone) or runs again
    condition = "condition"  # any other condition `Conditions` tracks
    drain_blocked = "drain_blocked"  # a maintenance window whose drain cannot fit
    maintenance_step = "maintenance_step"
    leader_changed = "leader_changed"
    test = "test"

    @property
    def stored(self) -> bool:
        """The store keeps it (plans, outcome rows, power events, bookings): `events` in the
        API reads those from there; the others exist only as events."""
        return self in _STORED


_STORED = frozenset({Kind.round, Kind.plan_made, Kind.migration_done, Kind.migration_failed,
                     Kind.migration_aborted, Kind.migration_skipped, Kind.power_on,
                     Kind.power_off, Kind.wake_failed, Kind.power_failed, Kind.power_skipped,
                     Kind.maintenance_step, Kind.drain_blocked})

#: The kinds a `[notify]` filter may name.
KINDS = tuple(k.value for k in Kind if k is not Kind.round)


@dataclass(frozen=True, slots=True)
class Event:
    kind: Kind
    severity: Severity
    host: str = ""
    vm: str = ""
    plan_id: str = ""
    #: What a driver, the scheduler or a condition said, shown as it is (redacted).
    detail: str = ""
    #: Figures for machines: src, dst, seq, duration_s, mode, actions, booking, status ...
    data: Mapping[str, Any] = field(default_factory=dict)
    ended: bool = False  # a condition that ended (its kind is the condition's)
    ts: float = field(default_factory=time.time)

    def text(self) -> str:
        return redact(_TEXT.get(self.kind, _plain)(self))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "severity": self.severity.name,
                "ts": round(self.ts, 3), "host": self.host, "vm": self.vm,
                "plan_id": self.plan_id, "ended": self.ended, "text": self.text(),
                "detail": redact(self.detail),
                "data": {k: redact(v) if isinstance(v, str) else v
                         for k, v in self.data.items()}}


def _took(e: Event) -> str:
    d = e.data.get("duration_s")
    return f" in {d:.1f} s" if isinstance(d, int | float) else ""


def _said(e: Event) -> str:
    return f": {e.detail}" if e.detail else ""


def _move(e: Event) -> str:
    return f"{e.vm} {e.data.get('src', '?')} -> {e.data.get('dst', '?')}"


def _plain(e: Event) -> str:
    about = " ".join(x for x in (e.host, e.vm) if x)
    return f"{e.kind.value.replace('_', ' ')}{' ' + about if about else ''}{_said(e)}"


def _condition(e: Event) -> str:
    if e.ended:
        return e.detail or f"{e.kind.value.replace('_', ' ')} ended"
    return e.detail or _plain(e)


def _round(e: Event) -> str:
    n = e.data.get("actions", 0)
    return f"round: {n} action(s) ({e.data.get('mode', '?')})"


def _plan(e: Event) -> str:
    n, p = e.data.get("actions", 0), e.data.get("problems", ())
    return (f"plan {e.plan_id}: {n} action(s), {e.data.get('mode', '?')}"
            f"{f', {len(p)} problem(s)' if p else ''}")


def _booking(e: Event) -> str:
    return (f"maintenance #{e.data.get('booking', '?')} on {e.host}: "
            f"{e.data.get('status', '?')}{_said(e)}")


def _leader(e: Event) -> str:
    was = e.data.get("was")
    return f"leader is now {e.data.get('leader', '?')}{f' (was {was})' if was else ''}{_said(e)}"


_TEXT: dict[Kind, Callable[[Event], str]] = {
    Kind.round: _round,
    Kind.plan_made: _plan,
    Kind.migration_started: lambda e: f"migrating {_move(e)}",
    Kind.migration_done: lambda e: f"migrated {_move(e)}{_took(e)}",
    Kind.migration_failed: lambda e: f"migration {_move(e)} failed{_took(e)}{_said(e)}",
    Kind.migration_aborted: lambda e: f"migration {_move(e)} aborted{_took(e)}{_said(e)}",
    Kind.migration_skipped: lambda e: f"migration {_move(e)} skipped{_said(e)}",
    Kind.power_started: lambda e: f"powering {e.data.get('want', '?')} {e.host}",
    Kind.power_on: lambda e: f"{e.host} powered on{_took(e)}",
    Kind.power_off: lambda e: f"{e.host} powered off{_took(e)}",
    Kind.wake_failed: lambda e: f"{e.host} did not wake{_took(e)}{_said(e)}",
    Kind.power_failed: lambda e: f"{e.host}: power-off failed{_took(e)}{_said(e)}",
    Kind.power_skipped: lambda e: f"{e.host}: power {e.data.get('want', '?')} skipped"
                                  f"{_said(e)}",
    Kind.host_stale: _condition,
    Kind.source_silent: _condition,
    Kind.daemon_degraded: _condition,
    Kind.plan_problem: _condition,
    Kind.vm_gone: _condition,
    Kind.vm_state: _condition,
    Kind.condition: _condition,
    Kind.drain_blocked: lambda e: f"drain cannot fit: {_booking(e)}",
    Kind.maintenance_step: _booking,
    Kind.leader_changed: lambda e: _leader(e),
}
