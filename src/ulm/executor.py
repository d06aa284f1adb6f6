"""The executor: runs a plan's actions against the drivers, safely.

Every action is re-checked against live state right before it runs; a stale one is SKIPPED with
the reason (never patched), a broken one FAILED with the driver's error. A journal entry is
written *before* each action, and each action's outcome is journalled, recorded and logged the
moment it is known, so `recover()` can reconcile after a crash and nobody waits for the end of
a plan to learn of a failure. A migration has a deadline, after which it is aborted; every wait
is bounded (`ulm.execute.migrate`); afterwards the executor checks where the VM really runs
and resumes it if a failure left it paused on its source. A failed move backs off
(`ulm.execute.backoff`). A host is powered off only if it runs no VM at that very moment.

Plans may run in the background (`submit`, `ulm.execute.background`) while the daemon keeps
collecting and planning: what their unfinished actions touch is held (`ulm.execute.holds`), so
no other plan touches it, and the migrations of all plans together stay within the limits.

The parts live in `ulm.execute`; this module is the entry point and keeps the names callers
import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from ulm.clock import Clock
from ulm.drivers.base import DomainState, Hypervisor, Power
from ulm.execute.background import Background, PlanDone
from ulm.execute.backoff import Backoff
from ulm.execute.base import OutcomeListener, log
from ulm.execute.holds import Holds, Slots
from ulm.execute.journal import SharedJournal
from ulm.execute.migrate import Flight
from ulm.execute.power import PowerActions
from ulm.execute.recheck import Refusal, SnapshotCheck
from ulm.execute.recover import Recovery
from ulm.execute.types import (
    Cause,
    Fenced,
    Journal,
    JournalEntry,
    Limits,
    MemoryJournal,
    Outcome,
    PlanResult,
    Status,
)
from ulm.execute.wakes import WakeBar
from ulm.model import Move, Plan
from ulm.scheduler import stages
from ulm.snapshot import Snapshot

__all__ = ["Cause", "Executor", "Fenced", "Journal", "JournalEntry", "Limits", "MemoryJournal",
           "MoveCheck", "Outcome", "OutcomeListener", "PlanDone", "PlanResult", "SnapshotCheck",
           "Status"]

#: The holds and the thread of a recovery in the background (no plan has this id).
RECOVERY = "recovery"

#: Re-checks a move against live state with the core's own capacity rule: None = still fine.
MoveCheck = Callable[[Move], str | None]


class Executor(Background, Recovery, PowerActions):
    def __init__(self, hv: Hypervisor, clock: Clock, journal: Journal, limits: Limits,
                 power: Mapping[str, Power] | None = None,
                 check: MoveCheck | None = None,
                 manages: Callable[[str], bool] = lambda vm: True) -> None:
        self.hv = hv
        self.clock = clock
        self.journal = SharedJournal(journal)  # plans run in their own threads
        self.limits = limits
        self.power = dict(power or {})
        self.check = check
        self.manages = manages
        self.backoff = Backoff(limits.backoff_base_s, limits.backoff_cap_s,
                               limits.backoff_pair_factor)
        self._stop_at: float | None = None  # set by request_stop: the shutdown grace's end
        #: Told of each action as it starts (outcome None) and as it ends (its outcome).
        self.on_outcome: list[OutcomeListener] = []
        self.wakes = WakeBar()  # hosts whose power-on failed: no destination yet
        self.holds = Holds()
        self.slots = Slots(limits.max_concurrent, limits.max_per_host)
        self._threads: dict[str, threading.Thread] = {}
        self._threads_lock = threading.Lock()
        #: Held from a move's budget count to its intent (`_reserve`): across plans' threads.
        self._budget_lock = threading.Lock()

    # -- stopping ------------------------------------------------------------------------------

    def request_stop(self, grace_s: float | None = None) -> None:
        """SIGTERM: start nothing new; migrations in flight get `grace_s` (default
        `Limits.shutdown_grace_s`) to finish, then they are aborted (the VM stays on its
        source, resumed if the abort left it paused) and the journal says so. Only sets two
        numbers, so a signal handler may call it."""
        grace = self.limits.shutdown_grace_s if grace_s is None else max(grace_s, 0.0)
        at = self.clock.now() + grace
        self._stop_at = at if self._stop_at is None else min(self._stop_at, at)

    @property
    def stopping(self) -> bool:
        return self._stop_at is not None

    @stopping.setter
    def stopping(self, value: bool) -> None:
        """`executor.stopping = True` (what the daemon's SIGTERM handler does) is
        `request_stop()` with the default grace."""
        if value:
            self.request_stop()
        else:
            self._stop_at = None

    def with_backoff(self, snap: Snapshot, stale_s: float = 0.0) -> Snapshot:
        """The snapshot with the VMs that back off after a failed migration marked, so the
        scheduler keeps them (and says why in the explain table), and the hosts whose wake
        failed quarantined until this collection (its `stale_s`) has seen them up since."""
        snap, cleared = self.wakes.apply(snap, stale_s)
        for host in cleared:
            log.info("%s: seen up by collection since its failed wake: a destination again",
                     host)
        return self.backoff.apply(snap, self.clock.now())

    def observe(self, snap: Snapshot) -> Snapshot:
        """The round's snapshot: handed to the re-check (as fresh as the last collection),
        and returned with every held move marked in flight (`Holds.mark`), so the scheduler
        sees them on both hosts and keeps their VMs."""
        if isinstance(self.check, SnapshotCheck):
            self.check.feed(snap)
        return self.holds.mark(snap)

    def refresh_check(self) -> None:
        """A collection was just stored (`ulm apply`, the API): the re-check reads afresh."""
        if isinstance(self.check, SnapshotCheck):
            self.check.feed(None)

    def recover_in_background(self) -> None:
        """`recover()` in a thread of its own, registered like a background plan (`join`
        waits for it, SIGTERM's grace applies to what it adopted): an orphaned migration may
        have most of its deadline left, and the rounds must go on collecting and planning
        meanwhile. What the open entries touch is held until recovery has closed them, so
        no round plans their VMs or hosts. A recovery still running is not started twice."""
        with self._threads_lock:
            if RECOVERY in self._threads:
                return
        try:
            self.holds.take(RECOVERY, [e.action for e in self.journal.open_entries()])
        except Exception as exc:  # the store: the recovery itself reports it
            log.warning("recovery: cannot read the journal's open entries: %s", exc)

        def run() -> None:
            try:
                self.recover()
            except Exception:
                log.exception("recovery failed")
            finally:
                self.holds.release_plan(RECOVERY)
                with self._threads_lock:
                    self._threads.pop(RECOVERY, None)

        thread = threading.Thread(target=run, name="ulm-recovery", daemon=True)
        with self._threads_lock:
            self._threads[RECOVERY] = thread
        thread.start()

    # -- running a plan ------------------------------------------------------------------------

    def execute(self, plan: Plan, plan_id: str) -> PlanResult:
        """Runs the plan here and now (`submit` runs it in a thread); its actions are held
        while it runs."""
        mine = not self.holds.has(plan_id)  # else `submit` holds them, and releases them
        if mine:
            self.holds.take(plan_id, plan.actions)
        try:
            return self._execute(plan, plan_id)
        finally:
            if mine:
                self.holds.release_plan(plan_id)

    def _execute(self, plan: Plan, plan_id: str) -> PlanResult:
        outcomes: list[Outcome] = []
        seq = 0
        for stage in stages(plan.actions, self.limits.max_per_host, self.limits.max_concurrent):
            moves = [a for a in stage if isinstance(a, Move)]
            power = [a for a in stage if not isinstance(a, Move)]
            if power:
                outcomes.extend(self._power_all(plan_id, seq, power))
                seq += len(power)
            if moves:
                outcomes.extend(self._migrate_all(plan_id, seq, moves))
                seq += len(moves)
        return PlanResult(plan_id, tuple(outcomes))

    def _migrate_all(self, plan_id: str, seq: int, moves: list[Move]) -> list[Outcome]:
        """One stage: each move starts once it has a slot (other plans' migrations count),
        re-checked right then; meanwhile the ones started are polled."""
        flights: list[Flight] = []
        done: dict[int, Outcome] = {}
        pending = list(enumerate(moves, seq + 1))
        try:
            while pending or flights:
                waiting = []
                for k, move in pending:
                    # Stopping, or held by another plan: skipped at once, with no slot.
                    free = not self.stopping and not self.holds.conflict(plan_id, move)
                    took = free and self.slots.take(move.src, move.dst)
                    if not took and free:
                        waiting.append((k, move))
                        continue
                    ended = self._launch(plan_id, k, move, took)
                    if isinstance(ended, Flight):
                        flights.append(ended)
                    else:
                        done[k] = ended
                pending = waiting
                if flights:
                    landed, flights = self._step(flights)
                    for f, o in landed:
                        self.slots.give(f.move.src, f.move.dst)
                        done[f.seq] = o
                if pending or flights:
                    self.clock.sleep(self._nap(flights) if flights else self.limits.poll_s)
        finally:  # an error that escapes must not keep the slots of the other plans
            for f in flights:
                self.slots.give(f.move.src, f.move.dst)
        return [done[k] for k in sorted(done)]

    def _launch(self, plan_id: str, k: int, move: Move, took: bool) -> Flight | Outcome:
        """Re-checks and starts one move; the slot it `took` is given back unless it flies."""
        started = self.clock.now()
        cause, why = self._stale(plan_id, move)
        if why or not took:
            if took:
                self.slots.give(move.src, move.dst)
            if not why:  # it changed back meanwhile: still not started without a slot
                cause, why = Cause.STOPPING, "ULM is stopping: no new migration started"
            return self._close(plan_id, k, Outcome(move, Status.SKIPPED, why, started,
                                                   started, cause), None)
        try:
            entry = self._reserve(plan_id, k, move)
        except Fenced as exc:  # another controller leads: nothing more starts here
            self.stopping = True
            self.slots.give(move.src, move.dst)
            return self._close(plan_id, k, Outcome(move, Status.SKIPPED, str(exc), started,
                                                   started, Cause.FENCED), None)
        if isinstance(entry, Refusal):  # the day's budget went to another plan's move
            self.slots.give(move.src, move.dst)
            return self._close(plan_id, k, Outcome(move, Status.SKIPPED, str(entry), started,
                                                   started, entry.cause), None)
        try:
            job = self.hv.start_migration(move.vm, move.src, move.dst, self._options())
        except Exception as exc:  # the driver's own error, kept for the admin
            self.slots.give(move.src, move.dst)
            return self._after_failure(plan_id, k, move, entry, Cause.START_FAILED, str(exc),
                                       started)
        self.journal.update(entry, "started", job)
        self.holds.start(plan_id, move)
        self._tell(plan_id, k, move, None)
        log.info("%s: migrating %s %s->%s (deadline %g s)", plan_id, move.vm, move.src,
                 move.dst, self.limits.deadline_s)
        return Flight(plan_id, k, move, entry, job, started, started + self.limits.deadline_s,
                      moved_at=started)

    def _reserve(self, plan_id: str, k: int, move: Move) -> int | Refusal:
        """The move's intent (its journal entry), if the day's budget still has room: the
        count (`SnapshotCheck.budget`: the journal's intents of today) and this intent under
        one lock, so two plans running at once never both take the day's last migration."""
        with self._budget_lock:
            if isinstance(self.check, SnapshotCheck):
                refused = self.check.budget(move)
                if refused is not None:
                    return refused
            return int(self.journal.intent(plan_id, k, move))

    def _stale(self, plan_id: str, move: Move) -> tuple[Cause, str]:
        """Why a move no longer makes sense against live state ("" = go)."""
        if self.stopping:
            return Cause.STOPPING, "ULM is stopping: no new migration started"
        if not self.manages(move.vm):
            return Cause.UNMANAGED, f"{move.vm} is not managed by ULM"
        held = self.holds.conflict(plan_id, move)
        if held:
            return Cause.HELD, held
        now = self.clock.now()
        for until, what in ((self.backoff.vm_until(move.vm, now), ""),
                            (self.backoff.pair_until(move.vm, move.dst, now), f" to {move.dst}")):
            if until is not None:
                return Cause.BACKOFF, (f"{move.vm}{what}: back-off for {until - now:.0f} s "
                                       "more after failed migration")
        try:
            states = self._states(move.vm)
        except Exception as exc:
            return Cause.STALE, f"cannot locate {move.vm}: {exc}"
        where = self._active(states)
        if where != [move.src]:
            return Cause.STALE, f"{move.vm} runs on {where or 'no host'}, not on {move.src}"
        state = states[move.src]
        if state is not DomainState.RUNNING:  # a paused VM is not running: never "moved"
            return Cause.PAUSED, f"{move.vm} is {state.value} on {move.src}: not moved"
        barred = self.wakes.barred(move.dst)
        if barred:
            return Cause.WAKE_FAILED, f"{move.vm} not moved to {move.dst}: {barred}"
        if self.check is not None:
            # The other migrations in flight count on their hosts (this one is not yet).
            # (The day's budget is asked later, with the intent: `_reserve`.)
            why = (self.check(move, self.holds.in_flight(but=(plan_id, move)),
                              with_budget=False)
                   if isinstance(self.check, SnapshotCheck) else self.check(move))
            if why:  # a `Refusal` says its kind; else the state moved on
                return getattr(why, "cause", Cause.STALE), why
        return Cause.NONE, ""
