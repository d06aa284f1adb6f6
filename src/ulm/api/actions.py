"""What the API may ask the daemon to do: the `Actions` protocol, and the errors it raises.

The API never changes the cluster or the store itself: every state change goes through an
`Actions` implementation (the daemon's, or `ulm.api.local.DaemonActions`), so that one process
owns the executor and the lock. Methods are synchronous and may take long (an apply migrates);
the API calls them from a worker thread. `who` is the token's name, for the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ulm.errors import UlmError


class ActionError(UlmError):
    status = 409  # HTTP status the API answers with


class NotFound(ActionError):
    status = 404


class Conflict(ActionError):  # the request is fine, the state does not allow it now
    status = 409


class Invalid(ActionError):  # the request itself cannot be right
    status = 422


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    seq: int  # 1-based index of the action in the plan
    kind: str
    status: str  # done | skipped | failed
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    plan_id: str
    status: str  # the plan's status afterwards: applied | failed
    outcomes: tuple[ActionOutcome, ...] = ()


@dataclass(frozen=True, slots=True)
class BookingRequest:
    host: str
    start: float
    end: float
    power_off: bool = False
    reason: str = ""
    return_home: bool = False


@dataclass(frozen=True, slots=True)
class BookingResult:
    id: int
    status: str  # booked | blocked
    detail: str  # whether the drain fits, and if not what is short


@dataclass(frozen=True, slots=True)
class PlanNowResult:
    plan_id: str | None  # None: the round found nothing to do (nothing is stored then)
    actions: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)
    dry_run: bool = False  # planned and answered only: nothing stored, nothing applied
    policy: str = ""
    action_list: tuple[dict[str, Any], ...] = ()  # a dry run's actions (`Plan.to_dict`)


class Actions(Protocol):
    def mode(self) -> str:
        """observe | advise | enforce: what the daemon does now."""
        ...

    def apply_plan(self, plan_id: str, skip: Sequence[int], who: str) -> ApplyResult:
        """Applies a proposed plan, every action re-checked first, except those whose 1-based
        `seq` is in `skip`. NotFound: no such plan; Conflict: it is not proposed."""
        ...

    def reject_plan(self, plan_id: str, reason: str, who: str) -> None:
        """Marks a proposed plan rejected: nothing of it is applied."""
        ...

    def book(self, req: BookingRequest, who: str) -> BookingResult:
        """NotFound: unknown host; Invalid: end <= start; Conflict: overlaps a booking."""
        ...

    def cancel_booking(self, booking_id: int, who: str) -> str:
        """Cancels it (or ends it now if it is draining/down): what happened, in words."""
        ...

    def drain(self, host: str, power_off: bool, who: str) -> BookingResult: ...

    def undrain(self, host: str, who: str) -> str: ...

    def set_mode(self, mode: str, who: str) -> str:
        """Switches observe/advise/enforce; returns the mode before."""
        ...

    def plan_now(self, who: str, dry_run: bool = False,
                 policy: str | None = None) -> PlanNowResult:
        """One round now instead of at the next interval; `dry_run` (or another `policy`, a
        built-in's name): the plan for the current snapshot, neither stored nor applied."""
        ...
