"""Events from the daemon's own data: a round's plan, an action's outcome, a condition, a
booking's step, a leader change. Pure functions: what the daemon, the executor and
`Conditions` hand their listeners goes in, an `Event` comes out."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from ulm.execute.types import Cause, Outcome, Status
from ulm.model import Action, Move, Plan, PowerOn
from ulm.notify.events import Event, Kind, Severity
from ulm.problems import as_data

#: Failures that are an abort (deadline, shutdown grace), not a refusal or an error.
_ABORTS = frozenset({Cause.DEADLINE, Cause.SHUTDOWN, Cause.ABORT_TIMEOUT})
#: Skips worth a warning: a paused VM, a host about to go off that still runs a VM.
_BAD_SKIPS = frozenset({Cause.PAUSED, Cause.BUSY_HOST})

#: `Conditions` keys are `prefix` or `prefix:name`; the prefix says what the condition is.
#: A quarantined host (`ulm.collect.guard`) is kept out like a stale one: the same kind, its
#: own detail and key.
_CONDITIONS = {"store": Kind.daemon_degraded, "stale-host": Kind.host_stale,
               "quarantine": Kind.host_stale,
               "silent": Kind.source_silent, "problem": Kind.plan_problem, "gone": Kind.vm_gone,
               "vm-state": Kind.vm_state}

_LEVELS = ((logging.CRITICAL, Severity.critical), (logging.ERROR, Severity.error),
           (logging.WARNING, Severity.warning))


def of_round(plan: Plan | None, plan_id: str | None, mode: str,
             now: float | None = None) -> list[Event]:
    """`round` for the stream; `plan_made` when the round stored a plan."""
    ts = time.time() if now is None else now
    n = len(plan.actions) if plan is not None else 0
    problems = list(plan.problems) if plan is not None else []
    issues = [as_data(p) for p in plan.issues] if plan is not None else []  # kinds: Overview
    out = [Event(Kind.round, Severity.debug, plan_id=plan_id or "", ts=ts,
                 data={"mode": mode, "actions": n, "problems": problems, "issues": issues})]
    if plan_id:
        out.append(Event(Kind.plan_made, Severity.info, plan_id=plan_id, ts=ts,
                         data={"mode": mode, "actions": n, "problems": problems}))
    return out


def of_action(plan_id: str, seq: int, action: Action, outcome: Outcome | None,
              now: float | None = None) -> Event:
    """An action that starts (`outcome` None) or ends."""
    ts = time.time() if now is None else now
    if isinstance(action, Move):
        return _move(plan_id, seq, action, outcome, ts)
    want = "on" if isinstance(action, PowerOn) else "off"
    data: dict[str, Any] = {"seq": seq, "want": want, "reason": action.reason}
    if outcome is None:
        return Event(Kind.power_started, Severity.info, host=action.host, plan_id=plan_id,
                     data=data, ts=ts)
    data |= {"duration_s": round(outcome.finished_at - outcome.started_at, 3),
             "status": outcome.status.value, "cause": outcome.cause.value}
    if outcome.status is Status.DONE:
        kind, sev = (Kind.power_on if want == "on" else Kind.power_off), Severity.info
    elif outcome.status is Status.FAILED:
        kind = Kind.wake_failed if want == "on" else Kind.power_failed
        sev = Severity.error
    else:
        kind = Kind.power_skipped
        sev = Severity.warning if outcome.cause in _BAD_SKIPS else Severity.info
    return Event(kind, sev, host=action.host, plan_id=plan_id, detail=outcome.detail,
                 data=data, ts=ts)


def _move(plan_id: str, seq: int, m: Move, o: Outcome | None, ts: float) -> Event:
    data: dict[str, Any] = {"seq": seq, "src": m.src, "dst": m.dst, "reason": m.reason,
                            "mem_mib": m.mem_mib}
    if o is None:
        return Event(Kind.migration_started, Severity.info, host=m.src, vm=m.vm,
                     plan_id=plan_id, data=data, ts=ts)
    data |= {"duration_s": round(o.finished_at - o.started_at, 3), "status": o.status.value,
             "cause": o.cause.value, "where": list(o.where)}
    if o.status is Status.DONE:
        kind, sev = Kind.migration_done, Severity.info
    elif o.status is Status.FAILED:
        kind = Kind.migration_aborted if o.cause in _ABORTS else Kind.migration_failed
        # left on two hosts, or paused where nobody can resume it: someone must look now
        sev = Severity.critical if o.duplicated or o.paused_on else Severity.error
    else:
        kind = Kind.migration_skipped
        sev = Severity.warning if o.cause in _BAD_SKIPS else Severity.info
    return Event(kind, sev, host=m.src, vm=m.vm, plan_id=plan_id, detail=o.detail, data=data,
                 ts=ts)


def of_condition(key: str, message: str, began: bool, level: int,
                 now: float | None = None) -> Event:
    """A condition that began (at its log level) or ended (info), keyed as `Conditions`
    keys it; the name after the prefix is the host or VM where that is what it names."""
    prefix, _, name = key.partition(":")
    kind = _CONDITIONS.get(prefix, Kind.condition)
    sev = next((s for lv, s in _LEVELS if level >= lv), Severity.info) if began \
        else Severity.info
    host = name if kind is Kind.host_stale else ""
    vm = name if kind in (Kind.vm_gone, Kind.vm_state) else ""
    return Event(kind, sev, host=host, vm=vm, detail=message, ended=not began,
                 data={"key": key}, ts=time.time() if now is None else now)


def of_bookings(before: dict[int, tuple[str, str]], bookings: Sequence[Any],
                now: float | None = None) -> list[Event]:
    """A step for every booking whose status changed since `before` (id -> (status, detail));
    a drain that cannot fit (status `blocked`) is its own kind, a warning."""
    ts = time.time() if now is None else now
    out = []
    for b in bookings:
        was = before.get(b.id)
        if was is not None and was[0] == b.status:
            continue
        blocked = b.status == "blocked"
        out.append(Event(Kind.drain_blocked if blocked else Kind.maintenance_step,
                         Severity.warning if blocked else Severity.info, host=b.host,
                         detail=b.detail, ts=ts,
                         data={"booking": b.id, "status": b.status,
                               "was": was[0] if was else ""}))
    return out


def leader_changed(leader: str, was: str = "", detail: str = "",
                   now: float | None = None) -> Event:
    """For the standby work: a daemon took over (or gave up) the lead."""
    return Event(Kind.leader_changed, Severity.warning, detail=detail,
                 data={"leader": leader, "was": was}, ts=time.time() if now is None else now)
