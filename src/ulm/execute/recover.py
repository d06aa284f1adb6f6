"""After a crash: the journal's unfinished entries reconciled with what libvirt says.

A peer-to-peer migration goes on without ULM. A restarted ULM adopts it if it still runs —
says which VM, which hosts and since when it waits for — applies the original deadline to it
(aborting it when past), and bounds the wait like any other; then it records the outcome row
the crashed process never wrote.
"""

from __future__ import annotations

import time

from ulm.drivers.base import DomainControl
from ulm.execute.base import log
from ulm.execute.migrate import Flight, Migrations
from ulm.execute.types import Cause, JournalEntry, Outcome, Status
from ulm.model import Move


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Recovery(Migrations):
    def recover(self) -> list[Outcome]:
        self._log_prefix = "recovered journal entry: "
        try:
            return self._recover()
        finally:
            self._log_prefix = ""

    def _recover(self) -> list[Outcome]:
        now = self.clock.now()
        try:
            self.backoff.replay(self.journal.move_history(now - self.backoff.horizon_s))
        except Exception as exc:  # the back-off restarts empty: a warning, not a failure
            log.warning("cannot read past migrations for the back-off: %s", exc)
        out: dict[int, Outcome] = {}  # by journal entry, to return them in its order
        flights: list[Flight] = []
        running = self.holds.plans()  # plans this process still runs: not orphans
        for entry in self.journal.open_entries():
            if entry.plan_id in running:
                continue
            action = entry.action
            if not isinstance(action, Move):
                out[entry.id] = (self._close(entry.plan_id, entry.seq, Outcome(
                    action, Status.FAILED, "interrupted by a restart; re-planned", now, now,
                    Cause.INTERRUPTED), entry.id))
                continue
            flight = self._adopt(entry, action, now)
            if flight is not None:
                flights.append(flight)
                continue
            states = self._settle(action.vm)
            if self._active(states) == [action.dst]:
                out[entry.id] = (self._close(entry.plan_id, entry.seq, Outcome(
                    action, Status.DONE, "completed while ULM was down", now,
                    self.clock.now(), where=(action.dst,)), entry.id))
            else:
                out[entry.id] = (self._after_failure(entry.plan_id, entry.seq, action, entry.id,
                                               Cause.INTERRUPTED, "interrupted by a restart",
                                               now, states))
        for f in flights:  # they count against the limits like any migration in flight
            self.slots.take(f.move.src, f.move.dst, force=True)
        try:
            out.update((f.entry, o) for f, o in self._wait(flights))
        finally:
            for f in flights:
                self.slots.give(f.move.src, f.move.dst)
        return [out[k] for k in sorted(out)]

    def _adopt(self, entry: JournalEntry, move: Move, now: float) -> Flight | None:
        """The orphaned migration as a flight under the original deadline, if it runs."""
        since = entry.started_at if entry.started_at is not None else now
        deadline = since + self.limits.deadline_s
        job = None
        if isinstance(self.hv, DomainControl):
            try:
                job = self.hv.adopt(move.vm, move.src, move.dst)
            except Exception as exc:
                log.warning("recovery: cannot look for the migration of %s on %s: %s",
                            move.vm, move.src, exc)
        if job is None:
            log.warning("recovery: migration of %s %s->%s (plan %s, started %s) was in flight "
                        "when ULM stopped and has ended; checking where %s runs", move.vm,
                        move.src, move.dst, entry.plan_id, _when(since), move.vm)
            return None
        wait = max(deadline - now, 0.0) + self.limits.abort_grace_s
        log.warning("recovery: migration of %s %s->%s (plan %s) still runs since %s; waiting "
                    "for it at most %.0f s (deadline %s%s)", move.vm, move.src, move.dst,
                    entry.plan_id, _when(since), wait, _when(deadline),
                    ", passed: aborting it" if now >= deadline else "")
        return Flight(entry.plan_id, entry.seq, move, entry.id, job, since, deadline,
                      recovered=True, moved_at=now)
