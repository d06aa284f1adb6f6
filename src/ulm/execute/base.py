"""What every part of the executor shares: the drivers, the clock, the journal, and `_close`,
the one place where an action's outcome is journalled, recorded, logged and fed to the
back-off (and the bar on a host whose wake failed) — at the moment it is known, not when the
whole plan ends."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping

from ulm.clock import Clock
from ulm.drivers.base import ACTIVE_STATES, DomainControl, DomainState, Hypervisor, Power
from ulm.execute.backoff import Backoff
from ulm.execute.holds import Holds, Slots
from ulm.execute.types import Cause, Journal, Limits, Outcome, Status
from ulm.execute.wakes import WakeBar
from ulm.model import Action, Move, PowerOff, PowerOn

log = logging.getLogger("ulm.executor")

#: (plan id, seq, action, outcome): outcome None when the action starts.
OutcomeListener = Callable[[str, int, Action, Outcome | None], None]

#: Failures that leave a VM somewhere it should not be: logged at ERROR, not WARNING.
_SEVERE = (Cause.MISPLACED, Cause.ABORT_TIMEOUT)
#: Skips an admin must hear of (a VM left paused, a destination whose wake failed): WARNING.
_TOLD = (Cause.PAUSED, Cause.WAKE_FAILED)


def arrow(move: Move) -> str:
    return f"{move.vm} {move.src}->{move.dst}"


class Base:
    hv: Hypervisor
    clock: Clock
    journal: Journal
    limits: Limits
    power: dict[str, Power]
    backoff: Backoff
    wakes: WakeBar
    holds: Holds
    slots: Slots
    manages: Callable[[str], bool]
    _stop_at: float | None
    _log_prefix: str = ""  # "recovered journal entry: " while `recover()` runs
    on_outcome: list[OutcomeListener]

    def _states(self, vm: str) -> dict[str, DomainState]:
        """Where the VM's domain is and in what state; a driver without `DomainControl`
        only knows where it is active, which then counts as running."""
        if isinstance(self.hv, DomainControl):
            return self.hv.states(vm)
        return {h: DomainState.RUNNING for h in self.hv.locate(vm)}

    @staticmethod
    def _active(states: Mapping[str, DomainState]) -> list[str]:
        return sorted(h for h, s in states.items() if s in ACTIVE_STATES)

    def _close(self, plan_id: str, seq: int, outcome: Outcome, entry: int | None) -> Outcome:
        """Journal, outcome row, back-off and one log line, now. A store that fails here must
        not abandon the migrations still in flight: it is logged, and the result still goes
        back to the caller."""
        action = outcome.action
        # A restart is not the move's fault: only a migration that failed backs off.
        if isinstance(action, Move) and outcome.status is Status.FAILED \
                and outcome.cause is not Cause.INTERRUPTED:
            until = self.backoff.failed(action.vm, action.dst, outcome.finished_at)
            outcome = dataclasses.replace(outcome, detail=(
                f"{outcome.detail}; back-off for {until - outcome.finished_at:.0f} s"))
        elif isinstance(action, Move) and outcome.status is Status.DONE:
            self.backoff.succeeded(action.vm)
        elif isinstance(action, PowerOff) and outcome.status is Status.FAILED:
            until = self.backoff.power_failed(action.host, outcome.finished_at)
            outcome = dataclasses.replace(outcome, detail=(
                f"{outcome.detail}; not powered off again for "
                f"{until - outcome.finished_at:.0f} s"))
        elif isinstance(action, PowerOff) and outcome.status is Status.DONE:
            self.backoff.power_succeeded(action.host)
        elif isinstance(action, PowerOn) and outcome.status is Status.FAILED:
            self.wakes.failed(action.host, outcome.finished_at, outcome.detail)
        elif isinstance(action, PowerOn) and outcome.status is Status.DONE:
            self.wakes.succeeded(action.host)
        try:
            if entry is not None:
                state = "done" if outcome.status is Status.DONE else "failed"
                self.journal.update(entry, state, outcome.detail)
            self.journal.record_outcome(plan_id, seq, outcome)
        except Exception as exc:
            log.error("%s: cannot record the outcome of %s: %s", plan_id, outcome.action, exc)
        self.holds.release(plan_id, action)  # what it touched is free for the next plan
        self._log(plan_id, outcome)
        self._tell(plan_id, seq, action, outcome)
        return outcome

    def _tell(self, plan_id: str, seq: int, action: Action, outcome: Outcome | None) -> None:
        """The `on_outcome` listeners; one that fails is logged and never stops a plan."""
        for listener in getattr(self, "on_outcome", ()):
            try:
                listener(plan_id, seq, action, outcome)
            except Exception as exc:
                log.warning("outcome listener failed: %s: %s", type(exc).__name__, exc)

    def _log(self, plan_id: str, o: Outcome) -> None:
        a = o.action
        what = f"migration of {arrow(a)}" if isinstance(a, Move) else f"{a.kind} {a.host}"
        what = f"{self._log_prefix}{what}"
        took = o.finished_at - o.started_at
        if o.status is Status.DONE:
            log.info("%s: %s done in %.1f s", plan_id, what, took)
        elif o.status is Status.SKIPPED:
            level = logging.WARNING if o.cause in _TOLD else logging.INFO
            log.log(level, "%s: %s skipped: %s", plan_id, what, o.detail)
        else:
            bad = (o.cause in _SEVERE or o.duplicated or o.paused_on
                   or (isinstance(a, Move) and not o.where))
            log.log(logging.ERROR if bad else logging.WARNING, "%s: %s failed after %.1f s: %s",
                    plan_id, what, took, o.detail)
