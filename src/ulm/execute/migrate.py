"""Live migrations in flight: every wait bounded, every end verified by observation.

One `Flight` per migration. The loop polls each, sleeping to the next poll or the next
deadline, whichever comes first (so an abort is issued at the deadline, not a poll later).
At the deadline — or when the shutdown grace ends — the job is aborted; an abort that fails
is retried until `abort_grace_s` has passed, and then ULM stops waiting: it looks where the
VM runs and reports, instead of waiting for ever on a job that does not end. Data remaining
that stops decreasing is logged as a stall while it happens. After any failure the VM must be
active on exactly one host; if the failure left it paused on its source, it is resumed.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from ulm.drivers.base import (
    DomainControl,
    DomainState,
    MigrationOptions,
    MigrationState,
    MigrationStatus,
)
from ulm.execute.base import Base, arrow, log
from ulm.execute.types import Cause, Outcome, Status
from ulm.model import Move

#: Data remaining must fall by more than this to count as progress (precopy re-sends pages).
_PROGRESS_MIB = 1.0
#: How far past its deadline an aborted migration's outcome may be recorded, where libvirt
#: cancels within it. The job used to be looked at again only a whole poll interval after the
#: abort (and the settling after it paced by the same interval): 2-4 s late with the polls of
#: a loaded controller. From the abort on, the job and the VM's copies are looked at every
#: `ABORT_POLL_S` instead: what is left of the bound is libvirt's own cancel time. A poll of
#: an aborted job is a flag read in the driver (no libvirt call: `LibvirtHypervisor.poll`), so
#: looking every 50 ms costs nothing; the VM's copies are read as often while they settle.
OVERSHOOT_S = 1.0
ABORT_POLL_S = 0.05


@dataclass
class Flight:
    plan_id: str
    seq: int
    move: Move
    entry: int
    job: str
    started: float
    deadline: float
    recovered: bool = False  # adopted after a restart
    abort_cause: Cause | None = None
    aborted_at: float | None = None
    abort_error: str = ""
    low_mib: float = math.inf  # least data remaining seen
    moved_at: float = 0.0  # when it last fell
    stalled_since: float | None = None
    stalled_s: float = 0.0  # stall time so far (reported with the outcome)


class Migrations(Base):
    def _options(self) -> MigrationOptions:
        bw = self.limits.bandwidth_mib_s
        return MigrationOptions(bandwidth_mib_s=bw or None,
                                auto_converge=self.limits.auto_converge,
                                deadline_s=self.limits.deadline_s)

    def _wait(self, flights: list[Flight]) -> list[tuple[Flight, Outcome]]:
        """Until every flight has ended or been given up; each with its outcome."""
        out: list[tuple[Flight, Outcome]] = []
        while flights:
            ended, flights = self._step(flights)
            out.extend(ended)
            if flights:
                self.clock.sleep(self._nap(flights))
        return out

    def _step(self, flights: list[Flight]) -> tuple[list[tuple[Flight, Outcome]], list[Flight]]:
        """One poll of every flight: (those that ended, with their outcome; those still on)."""
        out: list[tuple[Flight, Outcome]] = []
        still: list[Flight] = []
        for f in flights:
            status = self._poll(f.job)
            ended = (self._tend(f, status) if status.state is MigrationState.RUNNING
                     else self._land(f, status))
            if ended is None:
                still.append(f)
            else:
                out.append((f, ended))
        return out, still

    def _nap(self, flights: list[Flight]) -> float:
        """Until the next poll, or sooner if a deadline, an abort grace or the shutdown
        grace ends first: an abort goes out on time, not up to a poll interval late."""
        now = self.clock.now()
        events = [f.deadline if f.aborted_at is None else f.aborted_at + self.limits.abort_grace_s
                  for f in flights]
        if self._stop_at is not None and any(f.aborted_at is None for f in flights):
            events.append(self._stop_at)
        poll = self.limits.poll_s
        if any(f.aborted_at is not None for f in flights):  # its end is due: look closely
            poll = min(poll, ABORT_POLL_S)
        return min([poll] + [e - now for e in events if e > now])

    def _poll(self, job: str) -> MigrationStatus:
        try:
            return self.hv.poll(job)
        except Exception as exc:  # an unreachable source: the deadline still applies
            return MigrationStatus(MigrationState.RUNNING, error=f"poll failed: {exc}")

    def _tend(self, f: Flight, status: MigrationStatus) -> Outcome | None:
        """A job still running: watch its progress, abort it when due, give up when the
        abort does not take."""
        now = self.clock.now()
        self._watch(f, status, now)
        if f.aborted_at is None:
            if now >= f.deadline:
                self._abort(f, Cause.DEADLINE, now)
            elif self._stop_at is not None and now >= self._stop_at:
                self._abort(f, Cause.SHUTDOWN, now)
            else:
                return None
            status = self._poll(f.job)  # an abort often ends the job at once: look now
            return None if status.state is MigrationState.RUNNING else self._land(f, status)
        if now >= f.aborted_at + self.limits.abort_grace_s:
            return self._give_up(f)
        if f.abort_error and f.abort_cause is not None:
            self._abort(f, f.abort_cause, now)  # retry a failed abort on every poll
        return None

    def _watch(self, f: Flight, status: MigrationStatus, now: float) -> None:
        left = status.mem_remaining_mib
        if left <= 0.0:
            return  # not reported (yet): no basis to call it stalled
        if left < f.low_mib - _PROGRESS_MIB:
            if f.stalled_since is not None:
                f.stalled_s += now - f.stalled_since
                log.info("migration of %s progresses again: %.0f MiB remaining",
                         arrow(f.move), left)
            f.low_mib, f.moved_at, f.stalled_since = left, now, None
        elif f.stalled_since is None and now - f.moved_at >= self.limits.stall_s:
            f.stalled_since = f.moved_at
            log.warning("migration of %s stalled: %.0f MiB remaining, not decreasing for "
                        "%.0f s (deadline in %.0f s)", arrow(f.move), left, now - f.moved_at,
                        max(f.deadline - now, 0.0))

    def _abort(self, f: Flight, cause: Cause, now: float) -> None:
        first = f.aborted_at is None
        if first:
            f.abort_cause, f.aborted_at = cause, now
            log.info("migration of %s: %s: aborting", arrow(f.move), self._why(f))
        try:
            self.hv.abort(f.job)
            f.abort_error = ""
        except Exception as exc:  # retried until the grace ends; logged once
            if not f.abort_error:
                log.warning("migration of %s: abort failed: %s (retrying for %g s)",
                            arrow(f.move), exc, self.limits.abort_grace_s)
            f.abort_error = str(exc) or type(exc).__name__

    def _why(self, f: Flight) -> str:
        if f.abort_cause is Cause.SHUTDOWN:
            return (f"ULM stopping: shutdown grace of {self.limits.shutdown_grace_s:g} s "
                    "passed")
        return f"deadline of {self.limits.deadline_s:g} s passed"

    def _give_up(self, f: Flight) -> Outcome:
        how = (f"abort failed ({f.abort_error})" if f.abort_error else
               "the job did not end after the abort")
        reason = (f"{self._why(f)}: aborted; {how}; stopped waiting after "
                  f"{self.limits.abort_grace_s:g} s")
        return self._failed(f, Cause.ABORT_TIMEOUT, reason)

    def _land(self, f: Flight, status: MigrationStatus) -> Outcome:
        """The job ended: decide by where the VM is, not by what the job said."""
        states = self._settle(f.move.vm)
        where = self._active(states)
        worked = status.state in (MigrationState.COMPLETED, MigrationState.ENDED)
        if worked and where == [f.move.dst] and states[f.move.dst] is DomainState.RUNNING:
            detail = "completed while ULM was down" if f.recovered else ""
            return self._close(f.plan_id, f.seq, Outcome(
                f.move, Status.DONE, detail, f.started, self.clock.now(), where=tuple(where)),
                f.entry)
        if status.state is MigrationState.COMPLETED:
            return self._failed(f, Cause.MISPLACED, "migration reported success", states)
        cause = f.abort_cause or (Cause.INTERRUPTED if f.recovered
                                  else Cause.MIGRATION_FAILED)
        reason = (f"{self._why(f)}: aborted" if f.abort_cause is not None
                  else status.error or status.state.value)
        return self._failed(f, cause, reason, states)

    def _failed(self, f: Flight, cause: Cause, reason: str,
                states: dict[str, DomainState] | None = None) -> Outcome:
        if f.stalled_since is not None:
            f.stalled_s += self.clock.now() - f.stalled_since
        if f.stalled_s:
            reason = f"{reason}; stalled for {f.stalled_s:.0f} s"
        if f.recovered:
            reason = f"interrupted by a restart; {reason}"
        return self._after_failure(f.plan_id, f.seq, f.move, f.entry, cause, reason,
                                   f.started, states)

    def _after_failure(self, plan_id: str, seq: int, move: Move, entry: int | None,
                       cause: Cause, reason: str, started: float,
                       states: dict[str, DomainState] | None = None) -> Outcome:
        """Says where the VM really is (it must be active on exactly one host) and resumes
        it if the failure left it paused on its source."""
        states = self._settle(move.vm) if states is None else states
        resumed, paused = False, False
        if self._active(states) == [move.src] and states[move.src] is DomainState.PAUSED:
            resumed = self._resume(move)
            states = self._states(move.vm)
        if any(s in (DomainState.PAUSED, DomainState.POSTCOPY_FAILED) for s in states.values()):
            paused = True
        where = tuple(self._active(states))
        detail = f"{reason}; {self._place(move, states)}"
        if resumed:
            detail += f"; it was left paused on {move.src}: resumed"
        paused_on = tuple(h for h, s in states.items()
                          if s in (DomainState.PAUSED, DomainState.POSTCOPY_FAILED)) if paused \
            else ()
        return self._close(plan_id, seq, Outcome(
            move, Status.FAILED, detail, started, self.clock.now(), cause, where, resumed,
            paused_on), entry)

    def _resume(self, move: Move) -> bool:
        if not isinstance(self.hv, DomainControl):
            return False
        try:
            self.hv.resume(move.vm, move.src)
        except Exception as exc:
            log.error("%s was left paused on %s by the failed migration to %s; resuming it "
                      "failed: %s", move.vm, move.src, move.dst, exc)
            return False
        log.warning("%s was left paused on %s by the failed migration to %s: resumed",
                    move.vm, move.src, move.dst)
        return True

    def _settle(self, vm: str) -> dict[str, DomainState]:
        """The VM's states once it is active on one host, or after `settle_s`: right after
        a migration ends, libvirt may still be tearing the other copy down."""
        deadline = self.clock.now() + self.limits.settle_s
        while True:
            states: dict[str, DomainState] = {}
            with contextlib.suppress(Exception):  # a host that does not answer: try again
                states = self._states(vm)
            if len(self._active(states)) == 1 or self.clock.now() >= deadline:
                return states
            # the end is known: the copies go in well under a second, look closely
            self.clock.sleep(min(self.limits.poll_s, ABORT_POLL_S,
                                 max(deadline - self.clock.now(), 0.0)))

    @staticmethod
    def _place(move: Move, states: dict[str, DomainState]) -> str:
        active = {h: s for h, s in states.items()
                  if s not in (DomainState.SHUTOFF, DomainState.CRASHED)}
        crashed = [h for h, s in states.items() if s is DomainState.CRASHED]
        if len(active) == 1:
            host, state = next(iter(active.items()))
            text = (f"{move.vm} still runs on {host}" if state is DomainState.RUNNING
                    and host == move.src else f"{move.vm} is {state.value} on {host}")
        elif not active:
            text = f"{move.vm} runs on no host"
        else:
            text = f"{move.vm} is active on {len(active)} hosts: " + ", ".join(
                f"{h} ({s.value})" for h, s in sorted(active.items()))
        if crashed:
            text += f"; crashed on {', '.join(crashed)}"
        return text

