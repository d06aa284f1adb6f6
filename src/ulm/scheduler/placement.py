"""Where a VM may go (filters) and where it should go (ranking).

The hard constraints (`filters.FILTERS`, cheapest first) reject hosts with a human-readable reason,
counted per VM for the explain table; the ranking then picks one of the hosts left, by the
policy's strategy. Both run in one compiled pass over the hosts (`ulm.scheduler.scan`); this
module turns the question into that pass's inputs and its answer back into names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.scheduler import scan
from ulm.scheduler.filters import MASKED, PASS, REASONS
from ulm.scheduler.masks import describe
from ulm.scheduler.state import State


@dataclass(frozen=True, slots=True)
class Ask:
    """One placement question: VM `vm` needs a host, avoiding `excluded`."""

    vm: int
    excluded: B  # per host
    allow_empty: bool = True  # consolidation must not wake an empty host to empty another
    max_after: float | None = None  # balancing: the destination must stay this cool
    ranking: str | None = None  # overrides the policy's strategy (balancing ranks by balance)


@dataclass(slots=True)
class Answer:
    host: int | None
    rejections: dict[str, int] = field(default_factory=dict)
    top: list[tuple[int, float]] = field(default_factory=list)


def params(st: State, allow_empty: bool = True, max_after: float | None = None,
           ranking: str | None = None) -> F64:
    """The policy's numbers plus this question's, as the compiled scan reads them."""
    p = st.scan_params.copy()
    p[scan.P_MAX_AFTER] = np.nan if max_after is None else max_after
    p[scan.P_ALLOW_EMPTY] = float(allow_empty)
    p[scan.P_RANKING] = scan.RANKING[ranking or st.policy.placement.strategy]
    return p


def answer(counts: I64, top_h: I64, top_c: F64, n_top: int, st: State | None = None,
           vm: int = -1) -> Answer:
    """The scan's verdict on one VM, in names: a masked filter (label rule, CPU, back-off)
    says which rule, feature or back-off, given the state and the VM (`masks.Masks.text`)."""
    return answer_of(counts.tolist(), top_h[:n_top].tolist(), top_c[:n_top].tolist(), st, vm)


def answer_of(counts: list[int], top_h: list[int], top_c: list[float], st: State | None,
              vm: int) -> Answer:
    """`answer` from the rows as lists (the top ones cut to how many): relief converts the
    rows of tens of thousands of VMs at once, not three small arrays per VM."""
    rejections = {(st.masks.text(st.snap, vm, i) if st is not None and i in MASKED
                   else REASONS[i]): int(c) for i, c in enumerate(counts) if c}
    top = list(zip(top_h, top_c, strict=True))
    return Answer(top[0][0] if top else None, rejections, top)


def _scan(st: State, ask: Ask, top_n: int) -> tuple[I64, Answer]:
    p = params(st, ask.allow_empty, ask.max_after, ask.ranking)
    reason, counts, top_h, top_c, k = scan.place_one(ask.vm, p, ask.excluded, st.V, st.H, st.S,
                                                     top_n)
    return reason, answer(counts, top_h, top_c, k, st, ask.vm)


def place(st: State, ask: Ask, top_n: int = 3) -> Answer:
    """The best host for the VM (None if none passes), the rejections and the best few."""
    return _scan(st, ask, top_n)[1]


def verdict(st: State, ask: Ask, host: int) -> str | None:
    """Why `host` may not take the VM of `ask` now (None: it may)."""
    reason, _ = _scan(st, ask, 1)
    code = int(reason[host])
    if code in MASKED:
        d = st.masks.denial(st.snap, ask.vm, host)
        return describe(d) if d is not None else REASONS[code]
    return None if code == PASS else REASONS[code]


def maintenance(st: State) -> B:
    return st.maintenance
