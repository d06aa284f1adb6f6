"""The executor: runs a plan's actions against the drivers, safely.

Every action is re-checked against live state right before it runs; a stale one is SKIPPED with
the reason (never patched), a broken one FAILED with the driver's error. A journal entry is
written *before* each action, so `recover()` can reconcile after a crash. A migration is a
start / poll / `clock.sleep` loop with a deadline, after which the job is aborted; afterwards the
executor checks where the VM really runs. A host is powered off only if it runs no VM at that
very moment.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ulm.clock import Clock
from ulm.drivers.base import (
    Hypervisor,
    MigrationOptions,
    MigrationState,
    MigrationStatus,
    Power,
    PowerState,
)
from ulm.model import Action, Move, Plan, PowerOff, PowerOn
from ulm.scheduler import stages


class Status(enum.StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    status: Status
    detail: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan_id: str
    outcomes: tuple[Outcome, ...]

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    plan_id: str
    seq: int
    action: Action
    state: str  # intent | started | done | failed


class Journal(Protocol):
    """Write-ahead record of what the executor is about to do (the store implements it)."""

    def intent(self, plan_id: str, seq: int, action: Action) -> int: ...

    def update(self, entry: int, state: str, detail: str = "") -> None: ...

    def open_entries(self) -> list[JournalEntry]: ...


@dataclass
class MemoryJournal:
    """An in-memory journal, for the simulator and dry runs."""

    entries: dict[int, JournalEntry] = field(default_factory=dict)
    details: dict[int, str] = field(default_factory=dict)

    def intent(self, plan_id: str, seq: int, action: Action) -> int:
        entry = len(self.entries) + 1
        self.entries[entry] = JournalEntry(entry, plan_id, seq, action, "intent")
        return entry

    def update(self, entry: int, state: str, detail: str = "") -> None:
        old = self.entries[entry]
        self.entries[entry] = JournalEntry(old.id, old.plan_id, old.seq, old.action, state)
        self.details[entry] = detail

    def open_entries(self) -> list[JournalEntry]:
        return [e for e in self.entries.values() if e.state in ("intent", "started")]


@dataclass(frozen=True, slots=True)
class Limits:
    max_concurrent: int = 2
    max_per_host: int = 1
    deadline_s: float = 600.0
    poll_s: float = 0.5
    bandwidth_mib_s: float | None = None
    auto_converge: bool = False
    power_timeout_s: float = 300.0
    power_stagger_s: float = 10.0  # between the power actions of one stage (inrush current)
    empty_wait_s: float = 10.0  # how long a host about to be powered off may take to empty


#: Re-checks a move against live state with the core's own capacity rule: None = still fine.
MoveCheck = Callable[[Move], str | None]


class Executor:
    def __init__(self, hv: Hypervisor, clock: Clock, journal: Journal, limits: Limits,
                 power: Mapping[str, Power] | None = None,
                 check: MoveCheck | None = None,
                 manages: Callable[[str], bool] = lambda vm: True) -> None:
        self.hv = hv
        self.clock = clock
        self.journal = journal
        self.limits = limits
        self.power = dict(power or {})
        self.check = check
        self.manages = manages
        self.stopping = False  # set by SIGTERM: start nothing new, finish what runs

    # -- running a plan ------------------------------------------------------------------------

    def execute(self, plan: Plan, plan_id: str) -> PlanResult:
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
        running: list[tuple[Move, int, str, float]] = []
        done: list[Outcome] = []
        for k, move in enumerate(moves, seq + 1):
            started = self.clock.now()
            why = self._stale(move)
            if why:
                done.append(Outcome(move, Status.SKIPPED, why, started, started))
                continue
            entry = self.journal.intent(plan_id, k, move)
            try:
                job = self.hv.start_migration(move.vm, move.src, move.dst, self._options())
            except Exception as exc:  # the driver's own error, kept for the admin
                self.journal.update(entry, "failed", str(exc))
                done.append(self._settle(move, Status.FAILED, str(exc), started))
                continue
            self.journal.update(entry, "started", job)
            running.append((move, entry, job, started))
        done.extend(self._wait(running))
        return done

    def _wait(self, running: list[tuple[Move, int, str, float]]) -> list[Outcome]:
        out: list[Outcome] = []
        aborted: set[str] = set()
        while running:
            still: list[tuple[Move, int, str, float]] = []
            for move, entry, job, started in running:
                status = self._poll(job)
                if status.state is MigrationState.RUNNING:
                    late = self.clock.now() - started > self.limits.deadline_s
                    if late and job not in aborted:
                        self._abort(job)
                        aborted.add(job)
                    still.append((move, entry, job, started))
                    continue
                out.append(self._finish(move, entry, status, started, job in aborted))
            running = still
            if running:
                self.clock.sleep(self.limits.poll_s)
        return out

    def _finish(self, move: Move, entry: int, status: MigrationStatus, started: float,
                timed_out: bool) -> Outcome:
        if status.state is MigrationState.COMPLETED:
            where = self.hv.locate(move.vm)
            if where == [move.dst]:
                self.journal.update(entry, "done")
                return Outcome(move, Status.DONE, "", started, self.clock.now())
            detail = f"migration reported success but {move.vm} runs on {where or 'no host'}"
            self.journal.update(entry, "failed", detail)
            return Outcome(move, Status.FAILED, detail, started, self.clock.now())
        reason = (f"deadline of {self.limits.deadline_s:g} s passed: aborted" if timed_out
                  else status.error or status.state.value)
        self.journal.update(entry, "failed", reason)
        return self._settle(move, Status.FAILED, reason, started)

    def _settle(self, move: Move, status: Status, reason: str, started: float) -> Outcome:
        """After a failure, say where the VM really runs: it must be exactly one host."""
        where = self.hv.locate(move.vm)
        place = (f"{move.vm} still runs on {where[0]}" if len(where) == 1
                 else f"{move.vm} runs on {len(where)} hosts: {where}")
        return Outcome(move, status, f"{reason}; {place}", started, self.clock.now())

    def _poll(self, job: str) -> MigrationStatus:
        try:
            return self.hv.poll(job)
        except Exception as exc:
            return MigrationStatus(MigrationState.FAILED, error=f"poll failed: {exc}")

    def _abort(self, job: str) -> None:
        # The job may have finished meanwhile; the final check says where the VM runs.
        with contextlib.suppress(Exception):
            self.hv.abort(job)

    def _options(self) -> MigrationOptions:
        bw = self.limits.bandwidth_mib_s
        return MigrationOptions(bandwidth_mib_s=bw or None,
                                auto_converge=self.limits.auto_converge,
                                deadline_s=self.limits.deadline_s)

    def _stale(self, move: Move) -> str:
        """Why a move no longer makes sense against live state ("" = go)."""
        if self.stopping:
            return "ULM is stopping: no new migration started"
        if not self.manages(move.vm):
            return f"{move.vm} is not managed by ULM"
        try:
            where = self.hv.locate(move.vm)
        except Exception as exc:
            return f"cannot locate {move.vm}: {exc}"
        if where != [move.src]:
            return f"{move.vm} runs on {where or 'no host'}, not on {move.src}"
        if self.check is not None:
            why = self.check(move)
            if why:
                return why
        return ""

    # -- power ---------------------------------------------------------------------------------

    def _power_all(self, plan_id: str, seq: int,
                   actions: Sequence[Action]) -> list[Outcome]:
        """One stage of power actions: issued `power_stagger_s` apart (fifty servers must not
        draw their inrush current at once), then awaited together, each with its own
        deadline — so a morning's wake-up takes one boot, not one boot per host."""
        outcomes: dict[int, Outcome] = {}
        waiting: list[tuple[int, Action, Power, PowerState, int, float]] = []
        for k, action in enumerate(actions):
            if k and waiting:
                self.clock.sleep(self.limits.power_stagger_s)
            started = self.clock.now()
            issued = self._issue(plan_id, seq + k + 1, action)
            if isinstance(issued, Outcome):
                outcomes[k] = issued
            else:
                driver, want, entry = issued
                waiting.append((k, action, driver, want, entry, started))
        while waiting:
            still = []
            for k, action, driver, want, entry, started in waiting:
                if self._reached(driver, want):
                    self.journal.update(entry, "done")
                    outcomes[k] = Outcome(action, Status.DONE, "", started, self.clock.now())
                elif self.clock.now() > started + self.limits.power_timeout_s:
                    host = getattr(action, "host", "")
                    detail = (f"{host} did not reach {want.value} within "
                              f"{self.limits.power_timeout_s:g} s")
                    self.journal.update(entry, "failed", detail)
                    outcomes[k] = Outcome(action, Status.FAILED, detail, started,
                                          self.clock.now())
                else:
                    still.append((k, action, driver, want, entry, started))
            waiting = still
            if waiting:
                self.clock.sleep(self.limits.poll_s)
        return [outcomes[k] for k in range(len(actions))]

    def _issue(self, plan_id: str, seq: int,
               action: Action) -> Outcome | tuple[Power, PowerState, int]:
        """Checks and sends one power action; an Outcome if it ends here (skipped, failed)."""
        started = self.clock.now()
        host = action.host if isinstance(action, PowerOn | PowerOff) else ""
        driver = self.power.get(host)
        if driver is None:
            return Outcome(action, Status.SKIPPED, f"no power driver for {host}", started,
                           started)
        if self.stopping:
            return Outcome(action, Status.SKIPPED, "ULM is stopping", started, started)
        if isinstance(action, PowerOff):
            running = self._still_running(host)
            if running:  # the last line of defence: never power off a host that runs a VM
                return Outcome(action, Status.SKIPPED,
                               f"{host} still runs {', '.join(running)}", started, started)
        entry = self.journal.intent(plan_id, seq, action)
        try:
            if isinstance(action, PowerOff):
                driver.power_off()
                return driver, PowerState.OFF, entry
            driver.power_on()
            return driver, PowerState.ON, entry
        except Exception as exc:
            self.journal.update(entry, "failed", str(exc))
            return Outcome(action, Status.FAILED, str(exc), started, self.clock.now())

    def _still_running(self, host: str) -> list[str]:
        """The VMs on `host`, given `empty_wait_s` to go: right after a live migration the
        source may list the departed domain for a moment while libvirt tears it down."""
        deadline = self.clock.now() + self.limits.empty_wait_s
        while True:
            running = self.hv.list_vms(host)
            if not running or self.clock.now() >= deadline:
                return running
            self.clock.sleep(self.limits.poll_s)

    @staticmethod
    def _reached(driver: Power, want: PowerState) -> bool:
        try:
            return driver.state() is want
        except Exception:  # a BMC that does not answer yet: keep asking until the deadline
            return False

    # -- after a crash -------------------------------------------------------------------------

    def recover(self, settle_s: float = 120.0) -> list[Outcome]:
        """Reconciles unfinished journal entries with reality.

        A migration that was in flight when ULM died is finished or cancelled by libvirt on
        its own (peer-to-peer); wait until the VM runs in exactly one place, then record where.
        """
        out: list[Outcome] = []
        for entry in self.journal.open_entries():
            action = entry.action
            now = self.clock.now()
            if not isinstance(action, Move):
                self.journal.update(entry.id, "failed", "interrupted by a restart; re-planned")
                out.append(Outcome(action, Status.FAILED, "interrupted", now, now))
                continue
            where = self._settled(action.vm, settle_s)
            if where == [action.dst]:
                self.journal.update(entry.id, "done", "completed while ULM was down")
                out.append(Outcome(action, Status.DONE, "completed while ULM was down", now,
                                   self.clock.now()))
            else:
                detail = f"interrupted; {action.vm} runs on {where or 'no host'}"
                self.journal.update(entry.id, "failed", detail)
                out.append(Outcome(action, Status.FAILED, detail, now, self.clock.now()))
        return out

    def _settled(self, vm: str, settle_s: float) -> list[str]:
        deadline = self.clock.now() + settle_s
        while True:
            where = self.hv.locate(vm)
            if len(where) == 1 or self.clock.now() >= deadline:
                return where
            self.clock.sleep(self.limits.poll_s)
