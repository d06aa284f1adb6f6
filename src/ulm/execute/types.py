"""The executor's data: limits, outcomes (with a structured cause), the journal protocol."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from ulm.clock import Clock
from ulm.model import Action, Move


class Status(enum.StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class Cause(enum.StrEnum):
    """Why an action ended as it did: what callers branch on (never the English detail)."""

    NONE = ""
    STALE = "stale"  # live state no longer matches the plan
    UNMANAGED = "unmanaged"
    PAUSED = "paused"  # the VM is paused (or crashed) on its source: not moved
    BACKOFF = "backoff"  # a recent failed migration of this VM (or to this host)
    STOPPING = "stopping"  # ULM is shutting down: not started
    START_FAILED = "start_failed"  # the driver refused to start the migration
    MIGRATION_FAILED = "migration_failed"  # libvirt reported the migration failed
    DEADLINE = "deadline"  # aborted at its deadline
    SHUTDOWN = "shutdown"  # aborted when the shutdown grace ran out
    ABORT_TIMEOUT = "abort_timeout"  # aborted, but the job did not end: ULM stopped waiting
    MISPLACED = "misplaced"  # reported success, but the VM is not (only) on the destination
    INTERRUPTED = "interrupted"  # found in the journal after a restart
    POWER = "power"  # a power action failed or timed out
    NO_DRIVER = "no_driver"
    BUSY_HOST = "busy_host"  # a host about to be powered off still runs a VM
    HELD = "held"  # another plan's unfinished action holds the VM or a host it touches
    FENCED = "fenced"  # the journal refused it: this controller no longer leads
    DAY_BUDGET = "day_budget"  # today's migration budget is used up (re-checked at start)
    WAKE_FAILED = "wake_failed"  # the destination's power-on failed, not seen up since


class Fenced(Exception):
    """The journal refused an intent: the controller's fencing epoch is not current (a
    standby leads now, or the lease ran out unrenewed), so the action must not start."""

    def __init__(self, epoch: int | None, why: str) -> None:
        super().__init__(f"not started: this controller no longer leads (epoch {epoch}): {why}")
        self.epoch = epoch


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    status: Status
    detail: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    cause: Cause = Cause.NONE
    #: Where the VM is active after the action (moves only; empty when not checked).
    where: tuple[str, ...] = ()
    #: The VM was left paused on its source by the failure, and ULM resumed it.
    resumed: bool = False
    #: It is (still) paused there: resuming was unsafe or failed.
    paused_on: tuple[str, ...] = ()

    @property
    def duplicated(self) -> bool:
        return len(self.where) > 1


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
    started_at: float | None = None  # when the intent was written (recovery's deadline)


#: One past move for the back-off: (vm, destination, status, finished_at).
MoveRecord = tuple[str, str, str, float]


class Journal(Protocol):
    """Write-ahead record of what the executor is about to do, and of what came of it (the
    store implements it): intent before acting, the outcome the moment it is known."""

    def intent(self, plan_id: str, seq: int, action: Action) -> int:
        """The entry's id; raises `Fenced` when this controller may no longer act."""
        ...

    def update(self, entry: int, state: str, detail: str = "") -> None: ...

    def open_entries(self) -> list[JournalEntry]: ...

    def record_outcome(self, plan_id: str, seq: int, o: Outcome) -> None: ...

    def move_history(self, since: float) -> list[MoveRecord]:
        """Moves that ended (done or failed) since then, oldest first."""
        ...


@dataclass
class MemoryJournal:
    """An in-memory journal, for the simulator and dry runs."""

    entries: dict[int, JournalEntry] = field(default_factory=dict)
    details: dict[int, str] = field(default_factory=dict)
    outcomes: list[tuple[str, int, Outcome]] = field(default_factory=list)
    clock: Clock | None = None  # stamps intents (the store uses the wall clock)

    def intent(self, plan_id: str, seq: int, action: Action) -> int:
        entry = len(self.entries) + 1
        at = self.clock.now() if self.clock is not None else None
        self.entries[entry] = JournalEntry(entry, plan_id, seq, action, "intent", at)
        return entry

    def update(self, entry: int, state: str, detail: str = "") -> None:
        old = self.entries[entry]
        self.entries[entry] = JournalEntry(old.id, old.plan_id, old.seq, old.action, state,
                                           old.started_at)
        self.details[entry] = detail

    def open_entries(self) -> list[JournalEntry]:
        return [e for e in self.entries.values() if e.state in ("intent", "started")]

    def record_outcome(self, plan_id: str, seq: int, o: Outcome) -> None:
        self.outcomes.append((plan_id, seq, o))

    def move_history(self, since: float) -> list[MoveRecord]:
        return [(o.action.vm, o.action.dst, o.status.value, o.finished_at)
                for _, _, o in self.outcomes
                if isinstance(o.action, Move) and o.status is not Status.SKIPPED
                and o.finished_at >= since]


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
    #: After an abort, how long the job may take to end before ULM stops waiting for it (the
    #: abort itself may fail or hang: an unanswering source libvirtd, a stuck QEMU).
    abort_grace_s: float = 30.0
    #: How long after a migration ends the VM may take to be active in exactly one place
    #: (libvirt tears the other copy down); then ULM reports what it sees.
    settle_s: float = 10.0
    #: Data remaining not decreasing for this long: the migration is logged as stalled.
    stall_s: float = 20.0
    #: After SIGTERM, in-flight migrations get this long before they are aborted.
    shutdown_grace_s: float = 30.0
    #: Back-off after a failed migration: base * 2^(failures in a row - 1), at most cap; a
    #: (VM, destination) pair backs off `pair_factor` times longer than the VM.
    backoff_base_s: float = 120.0
    backoff_cap_s: float = 3600.0
    backoff_pair_factor: float = 4.0
