"""VM priorities (`ulm.priority`) in the loops that choose whom to move, and labels ULM
cannot read as one.

Relief, balancing and repair offer their selection only the lowest rank left on a host, so a
higher-priority VM leaves only once every lower one has; relief also places the highest first,
so under shortage the lowest is left unplaced (`relieve`). Consolidation empties the hosts
whose highest rank is lowest first (`emptying.top_rank`).

A label ULM does not understand (`ulm.priority = "urgent"`) is taken as normal — a typo in a
label, the admin's, must not stop planning — and said: one problem and one explain row per VM.
"""

from __future__ import annotations

from ulm.model import Decision
from ulm.problems import Problem, ProblemKind
from ulm.scheduler.gates import PRIORITIES, PRIORITY_LABEL, priority
from ulm.scheduler.state import State
from ulm.snapshot import Snapshot

#: what a readable label holds (besides upper case and spaces around it)
READABLE = frozenset((*PRIORITIES, "0", "1", "2", "3"))


def lowest(st: State, movable: list[int]) -> list[int]:
    """The candidates of the lowest priority rank among `movable` (all without ranks)."""
    if st.prio is None:
        return movable
    rank = st.prio
    low = min(int(rank[v]) for v in movable)
    return [v for v in movable if rank[v] == low]


def unreadable(snap: Snapshot) -> list[tuple[int, str]]:
    """(VM, label value) for each VM whose `ulm.priority` is not a priority."""
    if not any(snap.vm_labels):
        return []
    out = []
    for i, labels in enumerate(snap.vm_labels):
        value = labels.get(PRIORITY_LABEL) if labels else None
        if value is not None and value.strip().lower() not in READABLE:
            out.append((i, value))
    return out


def report(st: State, problems: list[Problem], rows: list[Decision]) -> None:
    """A problem and an explain row for each unreadable priority label."""
    snap = st.snap
    taken = PRIORITIES[priority(None)]
    for i, value in unreadable(snap):
        h = int(snap.vm_host[i])
        host = snap.host_names[h] if h >= 0 else ""
        why = (f"{PRIORITY_LABEL} = {value!r} is not one of {', '.join(PRIORITIES)} or 0-3; "
               f"taken as {taken}")
        problems.append(Problem(ProblemKind.BAD_LABEL, host=host, vm=snap.vm_names[i], why=why))
        rows.append(Decision(snap.vm_names[i], host, f"unreadable label: {why}",
                             f"planned as {taken} priority"))
