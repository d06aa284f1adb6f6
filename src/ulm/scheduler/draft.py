"""What a round has decided so far (`Draft`), and how a decision becomes a move and a row."""

from __future__ import annotations

from dataclasses import dataclass, field

from ulm.budget import UNLIMITED, DayBudget
from ulm.model import Decision, Move
from ulm.policy import Policy
from ulm.problems import Problem, ProblemKind
from ulm.scheduler.placement import Answer
from ulm.scheduler.state import State

TOP_N = 3  # best hosts shown per VM in the explain table


@dataclass
class Draft:
    """What the round has decided so far."""

    moves: list[Move] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    destinations: set[int] = field(default_factory=set)
    moved: set[int] = field(default_factory=set)  # a VM moves at most once per plan
    budget_hit: bool = False
    explain: bool = True  # a decision row for every VM that moves
    #: the day's migration budget (`ulm.budget`); every move of the plan counts against it
    day: DayBudget = UNLIMITED

    def budget_left(self, policy: Policy) -> int:
        """Moves the plan may still add: the round's budget and the day's, whichever is
        smaller (a drain for maintenance asks neither: `packing.evacuate`)."""
        return min(self._round_left(policy), self._day_left())

    def _round_left(self, policy: Policy) -> int:
        limit = policy.gates.max_moves_per_round
        return 1 << 62 if limit is None else limit - len(self.moves)

    def _day_left(self) -> int:
        left = self.day.left
        return 1 << 62 if left is None else left - len(self.moves)

    def day_spent(self, policy: Policy) -> bool:
        """The day's budget, not the round's, is what stops the plan now."""
        return self._day_left() <= self._round_left(policy)

    def kept_for_budget(self, policy: Policy) -> str:
        """The explain row's outcome for what the spent budget leaves undone."""
        if not self.day_spent(policy):
            return "kept: move budget used up"
        return ("kept: today's migration budget used up" if self._day_left() <= 0
                else "kept: too little of today's migration budget left")

    def budget_spent(self, policy: Policy, what: str = "") -> None:
        """Says once per plan that the budget stopped it (`what`: the work left undone)."""
        if self.budget_hit:
            return
        self.budget_hit = True
        if self.day_spent(policy):
            self.problems.append(Problem(ProblemKind.DAY_BUDGET, why=what,
                                         limit=self.day.limit or 0,
                                         used=self.day.used + len(self.moves)))
        else:
            self.problems.append(Problem(ProblemKind.BUDGET,
                                         limit=policy.gates.max_moves_per_round or 0))


def record(st: State, draft: Draft, vms: list[int], src: int, dsts: list[int],
            trigger: str) -> None:
    """Adds moves from `src` that the working state already holds (placement and slots) to
    the plan."""
    names, vm_names, ram = st.snap.host_names, st.snap.vm_names, st.lists.ram
    draft.moved.update(vms)
    draft.destinations.update(dsts)
    draft.moves.extend([Move(vm_names[v], names[src], names[d], trigger, ram[v])
                        for v, d in zip(vms, dsts, strict=True)])


def reasons(answer: Answer) -> str:
    if not answer.rejections:
        return "no candidate host"
    return ", ".join(f"{reason} ({n})" for reason, n in answer.rejections.items())


def decision(st: State, vm: int, src: int, trigger: str, answer: Answer,
              outcome: str) -> Decision:
    return Decision(
        vm=st.snap.vm_names[vm],
        host=st.snap.host_names[src],
        trigger=trigger,
        outcome=outcome,
        rejections=dict(answer.rejections),
        top_scores=tuple((st.snap.host_names[h], round(s, 6)) for h, s in answer.top),
    )
