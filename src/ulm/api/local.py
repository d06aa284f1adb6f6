"""`DaemonActions`: the `Actions` protocol over a `Daemon` object, serialised by one lock.

It is what `ulm run --http` can hand the API when the daemon's own loop also takes `lock`
around each round; the API tests run it over a daemon on SimCluster. It uses the daemon and
the store only through their public methods, the same ones `ulm apply` and `ulm maintenance`
use, and tells the event bus what it did.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from ulm.api.actions import (
    ActionOutcome,
    ApplyResult,
    BookingRequest,
    BookingResult,
    Conflict,
    Invalid,
    NotFound,
    PlanNowResult,
)
from ulm.api.bus import EventBus
from ulm.budget import day_start
from ulm.daemon import Mode
from ulm.errors import UlmError
from ulm.executor import Outcome, Status
from ulm.handover import hand_over
from ulm.notify.make import of_round
from ulm.policy import resolve_policy
from ulm.scheduler import check_drain
from ulm.store.store import plan_from_body

FOREVER_S = 10 * 365 * 86400.0  # an open-ended drain, as `ulm drain` books it


class DaemonActions:
    def __init__(self, daemon: Any, bus: EventBus, lock: threading.Lock | None = None) -> None:
        self.daemon = daemon
        self.bus = bus
        self.lock = lock or threading.Lock()

    @property
    def store(self) -> Any:
        return self.daemon.store

    def _now(self) -> float:
        return float(self.daemon.clock.now())

    def mode(self) -> str:
        return str(self.daemon.mode.value)

    # -- plans ---------------------------------------------------------------------------------

    def _proposed(self, plan_id: str) -> Any:
        try:
            record = self.store.plan(plan_id)
        except UlmError:
            raise NotFound(f"no plan {plan_id!r}") from None
        if record.status != "proposed":
            raise Conflict(f"plan {plan_id} is {record.status}, not proposed: nothing done")
        return record

    def apply_plan(self, plan_id: str, skip: Sequence[int], who: str) -> ApplyResult:
        with self.lock:
            record = self._proposed(plan_id)
            plan = plan_from_body(record.plan)
            n = len(plan.actions)
            bad = sorted(s for s in skip if not 1 <= s <= n)
            if bad:
                raise Invalid(f"plan {plan_id} has actions 1..{n}; cannot skip {bad}")
            keep = [a for i, a in enumerate(plan.actions, 1) if i not in set(skip)]
            chosen = dataclasses.replace(plan, actions=tuple(keep))
            self.daemon.collect(self._now())  # the re-checks need a fresh picture
            self.store.set_plan_status(plan_id, "running")  # a second apply: not proposed
            wait = hand_over(self.daemon, chosen, plan_id)
        # Held by the executor from here on: the rounds go on while it runs (not under lock).
        result = wait()
        with self.lock:
            outcomes = list(result.outcomes)
            now = self._now()
            for i, a in enumerate(plan.actions, 1):  # the skipped ones are on record too
                if i in set(skip):
                    o = Outcome(a, Status.SKIPPED, f"skipped by {who}", now, now)
                    self.store.record_outcome(plan_id, len(outcomes) + 1, o)
                    outcomes.append(o)
            status = self.store.plan(plan_id).status
        seq_of = {a: i for i, a in enumerate(plan.actions, 1)}
        out = tuple(ActionOutcome(seq_of.get(o.action, 0), o.action.kind, o.status.value,
                                  o.detail) for o in outcomes)
        self.bus.publish("plan.applied", {"plan_id": plan_id, "by": who, "status": status,
                                          "skipped": sorted(set(skip))})
        return ApplyResult(plan_id, status, out)

    def reject_plan(self, plan_id: str, reason: str, who: str) -> None:
        with self.lock:
            self._proposed(plan_id)
            self.store.set_plan_status(plan_id, "rejected")
        self.bus.publish("plan.rejected", {"plan_id": plan_id, "by": who, "reason": reason})

    def plan_now(self, who: str, dry_run: bool = False,
                 policy: str | None = None) -> PlanNowResult:
        if dry_run or policy is not None:
            return self._dry_run(who, policy)
        with self.lock:
            r = self.daemon.run_round()
        n = len(r.plan.actions) if r.plan is not None else 0
        problems = tuple(r.plan.problems) if r.plan is not None else ()
        for event in of_round(r.plan, r.plan_id, self.mode(), self._now()):
            self.daemon.tell(event)  # as the daemon's own rounds: stream, notifications
        self.bus.publish("plan.now", {"plan_id": r.plan_id, "actions": n, "by": who})
        return PlanNowResult(r.plan_id, n, problems)

    def _dry_run(self, who: str, name: str | None) -> PlanNowResult:
        """The plan the daemon would make now, under its policy or a built-in one: from the
        snapshot a round plans on, planned as a round plans (`Holds.plan`: held hosts
        kept out, held actions dropped); the answer only: nothing is stored, nothing applied,
        no booking advanced."""
        d = self.daemon
        policy = d.policy if name is None else resolve_policy(name)
        with self.lock:
            now = self._now()
            plan = d.executor.holds.plan(d.planning_snapshot(now, policy), policy, now)
        used = name or policy.name
        self.bus.publish("plan.now", {"plan_id": None, "actions": len(plan.actions), "by": who,
                                      "dry_run": True, "policy": used})
        return PlanNowResult(None, len(plan.actions), tuple(plan.problems), True, used,
                             tuple(plan.to_dict()["actions"]))

    def set_mode(self, mode: str, who: str) -> str:
        try:
            new = Mode(mode)
        except ValueError:
            raise Invalid(f"mode must be observe, advise or enforce, not {mode!r}") from None
        with self.lock:
            old = self.daemon.mode
            self.daemon.mode = new
        self.bus.publish("mode", {"mode": new.value, "was": old.value, "by": who})
        return str(old.value)

    # -- maintenance ---------------------------------------------------------------------------

    def book(self, req: BookingRequest, who: str) -> BookingResult:
        cfg = self.daemon.cfg
        if req.host not in [h.name for h in cfg.hosts]:
            raise NotFound(f"unknown host {req.host!r}")
        if req.end <= req.start:
            raise Invalid("end must be after start")
        with self.lock:
            for b in self.store.bookings(active_only=True):
                if b.host == req.host and b.start < req.end and req.start < b.end:
                    raise Conflict(f"{req.host} already has maintenance #{b.id} in that time")
            fits, summary = self._check(req.host, req.start)
            booking = self.store.book(req.host, req.start, req.end, req.power_off,
                                      req.reason or f"booked by {who}",
                                      "booked" if fits else "blocked",
                                      summary if fits else summary +
                                      "; nothing will be powered off", req.return_home)
        status = "booked" if fits else "blocked"
        self.bus.publish("maintenance.booked", {"id": booking, "host": req.host, "by": who,
                                                "status": status})
        return BookingResult(booking, status, summary)

    def _check(self, host: str, start: float | None = None) -> tuple[bool, str]:
        now = self._now()
        cfg, policy = self.daemon.cfg, self.daemon.policy
        snap = self.store.snapshot(now, cfg.collect.window, cfg.collect.stale_s,
                                   day_start=day_start(policy, now))
        if host not in snap.host_index:
            return True, f"{host} has not been seen yet: the drain is checked when it is"
        report = check_drain(snap, policy, host, now, self.store.migration_speed(),
                             at=max(start or now, now))
        return report.fits, report.summary()

    def cancel_booking(self, booking_id: int, who: str) -> str:
        with self.lock:
            current = next((b for b in self.store.bookings() if b.id == booking_id), None)
            if current is None:
                raise NotFound(f"no maintenance booking #{booking_id}")
            if current.status in ("done", "cancelled"):
                raise Conflict(f"maintenance #{booking_id} is {current.status} already")
            if current.status in ("draining", "down"):
                self.store.set_booking_end(booking_id, self._now())  # the daemon returns it
                said = f"#{booking_id}: ended now; the daemon brings {current.host} back"
            else:
                self.store.set_booking(booking_id, "cancelled", f"cancelled by {who}")
                said = f"#{booking_id} cancelled"
        self.bus.publish("maintenance.cancelled", {"id": booking_id, "host": current.host,
                                                   "by": who})
        return said

    def drain(self, host: str, power_off: bool, who: str) -> BookingResult:
        now = self._now()
        return self.book(BookingRequest(host, now, now + FOREVER_S, power_off,
                                        f"drain by {who}"), who)

    def undrain(self, host: str, who: str) -> str:
        if host not in [h.name for h in self.daemon.cfg.hosts]:
            raise NotFound(f"unknown host {host!r}")
        with self.lock:
            active = [b for b in self.store.bookings(active_only=True) if b.host == host]
            if not active:
                raise Conflict(f"{host} is not drained")
            for b in active:
                if b.status in ("booked", "blocked"):
                    self.store.set_booking(b.id, "cancelled", f"undrain by {who}")
                else:
                    self.store.set_booking_end(b.id, self._now())
        self.bus.publish("maintenance.undrained", {"host": host, "by": who})
        return f"{host}: drain ended; the daemon reopens it"
