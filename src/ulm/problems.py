"""What a plan cannot do, as data: a kind and its particulars (host, VM, shortfall, why).

Control flow reads the fields (`power.wake` wakes a host when a VM found no host; a drain
check keeps the problems of its host); only the edge — the CLI, the logs, the API, a stored
plan — renders them, with `str(problem)`, to the texts ULM has always printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ProblemKind(Enum):
    FREEZE = "freeze"  # a change freeze: no consolidation or power-off
    BUDGET = "budget"  # the round's move budget is used up
    UNPLACED = "unplaced"  # a VM that must leave its host found no host
    STAYS_OVERLOADED = "stays-overloaded"  # an overloaded host has no movable VM left
    DRAIN_NO_FIT = "drain-no-fit"  # an evacuation does not fit (nothing moved)
    CANNOT_EMPTY = "cannot-empty"  # a host holds VMs that may not move
    HOME_BUDGET = "home-budget"  # return home: the move budget is used up
    HOME_REJECTED = "home-rejected"  # return home: the reopened host does not take the VM
    DAY_BUDGET = "day-budget"  # today's migration budget is used up: the rest waits
    DRAIN_PAST_BUDGET = "drain-past-budget"  # a maintenance drain goes past today's budget
    BAD_LABEL = "bad-label"  # a VM label ULM cannot read (taken as its default)
    VIOLATION = "violation"  # a placement rule is broken and no repair fits this round


#: the kinds that mean load is left without a host: reasons to wake a sleeping one
UNHOUSED = frozenset({ProblemKind.UNPLACED, ProblemKind.STAYS_OVERLOADED})


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing the plan cannot do. `host` is the host it is about (the VM's source host for
    a VM), `why` the rejection reasons or the rule in the way."""

    kind: ProblemKind
    host: str = ""
    vm: str = ""
    vms: tuple[str, ...] = ()  # the VMs in the way (the first few)
    why: str = ""
    mem_mib: float = 0.0  # the VM's size, for a drain that does not fit
    limit: int = 0  # the move budget (of the round, or of the day)
    used: int = 0  # the day's budget: migrations started today, this plan's included
    until: str = ""  # the end of a change freeze (ISO 8601)

    @property
    def detail(self) -> str:
        """The text without the host it is about when the kind's text starts with it (a
        drain check's summary names the host already)."""
        if self.kind is ProblemKind.DRAIN_NO_FIT:
            return f"{self.vm} ({self.mem_mib:.0f} MiB) has no host: {self.why}"
        return str(self)

    def __str__(self) -> str:
        k, K = self.kind, ProblemKind
        if k is K.FREEZE:
            return (f"change freeze until {self.until}{': ' + self.why if self.why else ''}: "
                    "no consolidation or power-off")
        if k is K.BUDGET:
            return f"move budget of this round used up: {self.limit} moves"
        if k is K.UNPLACED:
            return f"{self.vm} on {self.host} could not be placed: {self.why}"
        if k is K.STAYS_OVERLOADED:
            return (f"{self.host} stays overloaded: no movable VM left "
                    f"({', '.join(self.vms) or 'none'})")
        if k is K.DRAIN_NO_FIT:
            return f"the drain of {self.host} does not fit: {self.detail}"
        if k is K.CANNOT_EMPTY:
            return (f"cannot empty {self.host}: {', '.join(self.vms)} may not move "
                    f"({self.why})").rstrip()
        if k is K.DAY_BUDGET:
            what = "used up" if self.used >= self.limit else "too small for it"
            return (f"migration budget of the day {what} ({self.used} of {self.limit} "
                    f"started today): {self.why or 'the rest'} waits for tomorrow")
        if k is K.DRAIN_PAST_BUDGET:
            return (f"the drain of {self.host} takes today's migrations to {self.used}, past "
                    f"the budget of {self.limit}: a drain for maintenance is never held back, "
                    "other moves wait for tomorrow")
        if k is K.BAD_LABEL:
            return f"{self.vm} has an unreadable label: {self.why}"
        if k is K.VIOLATION:
            where = f" on {self.host}" if self.host else ""
            return f"rule broken{where} ({', '.join(self.vms) or self.vm}): {self.why}"
        if k is K.HOME_BUDGET:
            return f"{self.vm} stays: move budget of {self.limit} used up"
        return f"{self.vm} stays on {self.host}: {self.why}"


def as_data(p: Problem) -> dict[str, object]:
    """A problem as the store and the stream keep it beside its text: its kind and the
    figures a reader needs (the Overview's spent day budget)."""
    return {"kind": p.kind.value, "host": p.host, "vm": p.vm, "why": p.why, "limit": p.limit,
            "used": p.used}


def from_data(d: dict[str, object]) -> Problem | None:
    """`as_data` read back (None: a kind this version does not know)."""
    try:
        kind = ProblemKind(d.get("kind"))
    except ValueError:
        return None
    return Problem(kind, host=str(d.get("host") or ""), vm=str(d.get("vm") or ""),
                   why=str(d.get("why") or ""), limit=int(d.get("limit") or 0),  # type: ignore[call-overload]
                   used=int(d.get("used") or 0))  # type: ignore[call-overload]
