"""Repair: rule violations found in the placement, fixed with the fewest moves.

A violation (`Violation`, data) is one of: two VMs of an anti-affinity group on one host (all
but one move: the one that may not move stays, else the highest priority); a keep-together
group spread over several hosts (it is joined on the host holding most of it: the others
move); a VM on a host a must / must-not label rule or its CPU forbids (it moves, with its
keep-together mates on that host). Each is repaired whole or not at all (a partial repair is
undone exactly), every move through the placement filters, and never so that a group spans
more hosts than before. What cannot be repaired is a problem (`VIOLATION`).

Every mode repairs (before relief); `mode = "repair-only"` does nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from ulm.arrays import I64
from ulm.model import Decision
from ulm.problems import Problem, ProblemKind
from ulm.scheduler import groups, working
from ulm.scheduler.draft import Draft, decision, reasons, record
from ulm.scheduler.filters import CPUMODEL, RULE
from ulm.scheduler.masks import describe
from ulm.scheduler.placement import Answer, Ask, place
from ulm.scheduler.state import State


class ViolationKind(Enum):
    ANTI_AFFINITY = "anti-affinity"
    KEEP_TOGETHER = "keep-together"
    LABEL_RULE = "label-rule"
    CPU = "cpu"


@dataclass(frozen=True, slots=True)
class Violation:
    kind: ViolationKind
    vms: tuple[int, ...]  # the fewest VMs whose moves repair it, lowest priority first
    host: int  # where it is (keep-together: the host the group is joined on)
    why: str  # the rule, as the explain row's trigger says it


def spans(st: State) -> I64:
    """Per keep-together group, on how many hosts its placed VMs are."""
    t = st.together
    out = np.zeros(t.shape[1], np.int64)
    for g in range(t.shape[1]):
        hosts = st.vm_host[t[:, g]]
        out[g] = len(np.unique(hosts[hosts >= 0]))
    return out


def find(st: State) -> list[Violation]:
    """Every violation in the working placement (none without groups, rules or CPU data)."""
    out: list[Violation] = []
    names = st.snap.host_names
    anti = _group_names(groups.anti_affinity(st.snap, st.policy), st.member.shape[1])
    for g in range(st.member.shape[1]):
        for h, vms in _by_host(st, np.flatnonzero(st.member[:, g])).items():
            if len(vms) > 1:
                stay = max(vms, key=lambda v: (bool(st.fixed_mask[v]), _rank(st, v), -v))
                out.append(Violation(ViolationKind.ANTI_AFFINITY, _order(st, [
                    v for v in vms if v != stay]), h, f"anti-affinity group {anti[g]} has "
                    f"{len(vms)} VMs on {names[h]}"))
    kt = _group_names(groups.keep_together(st.snap, st.policy), st.together.shape[1])
    for g in range(st.together.shape[1]):
        at = _by_host(st, np.flatnonzero(st.together[:, g]))
        if len(at) > 1:
            target = max(at, key=lambda h: (any(st.fixed_mask[v] for v in at[h]),
                                            not st.maintenance[h], len(at[h]), -h))
            movers = [v for h, vms in at.items() if h != target for v in vms]
            out.append(Violation(ViolationKind.KEEP_TOGETHER, _order(st, movers), target,
                                 f"keep-together group {kt[g]} is on {len(at)} hosts; "
                                 f"joined on {names[target]}"))
    m = st.masks
    if len(m.vm_class):
        placed = np.flatnonzero(st.vm_host >= 0)
        code = m.deny[m.vm_class[placed], st.vm_host[placed]]
        for v in placed[(code == RULE) | (code == CPUMODEL)].tolist():
            h = int(st.vm_host[v])
            d = m.denial(st.snap, v, h)
            kind = ViolationKind.LABEL_RULE if d is not None and d.code == RULE \
                else ViolationKind.CPU
            out.append(Violation(kind, _order(st, _with_mates(st, v, h)), h,
                                 f"{describe(d) if d is not None else kind.value} "
                                 f"(on {names[h]})"))
    return out


def repair(st: State, draft: Draft) -> None:
    """Repairs the violations one by one (each re-found after the last repair)."""
    if not (st.member.shape[1] or st.together.shape[1] or len(st.masks.vm_class)):
        return  # nothing can be violated: the usual case, no search
    tried: set[tuple[ViolationKind, int, tuple[int, ...]]] = set()
    while True:
        todo = [v for v in find(st) if (v.kind, v.host, v.vms) not in tried]
        if not todo:
            return
        v = todo[0]
        tried.add((v.kind, v.host, v.vms))
        _repair_one(st, draft, v)


def _repair_one(st: State, draft: Draft, v: Violation) -> None:
    snap = st.snap
    held = [u for u in v.vms if st.fixed_mask[u] or u in draft.moved]
    if held:
        u = held[0]
        _unrepaired(st, draft, v, f"{snap.vm_names[u]} may not move "
                    f"({st.fixed[u] or 'moved in this plan'})")
        return
    if draft.budget_left(st.policy) < len(v.vms):
        draft.budget_spent(st.policy, "repair of rule violations")
        _unrepaired(st, draft, v, "move budget used up")
        return
    excluded = st.maintenance.copy()
    if v.kind is ViolationKind.KEEP_TOGETHER:  # only the host the group is joined on
        excluded[:] = True
        excluded[v.host] = bool(st.maintenance[v.host])
    elif v.kind is not ViolationKind.ANTI_AFFINITY:
        # the movers' own hosts: mates there do not count, they move along (keep-together
        # joins on the target; a label or CPU repair moves the host's part of the group)
        excluded[[int(st.vm_host[u]) for u in v.vms]] = True
    done, failed = _move_all(st, list(v.vms), excluded)
    if failed is not None:
        vm, ans = failed
        _unrepaired(st, draft, v, f"{snap.vm_names[vm]}: {reasons(ans)}", (vm, ans))
        return
    trigger = f"repair: {v.why}"
    for vm, src, dst, ans in done:
        record(st, draft, [vm], src, [dst], trigger)
        if draft.explain:
            draft.decisions.append(decision(st, vm, src, trigger, ans,
                                            f"moved to {snap.host_names[dst]}"))


def _move_all(st: State, vms: list[int], excluded: np.ndarray
              ) -> tuple[list[tuple[int, int, int, Answer]], tuple[int, Answer] | None]:
    """Moves every VM (each seeing the moves before it) or, undone exactly, none: the moves,
    or the VM that found no host and why. Never so that a group spans more hosts."""
    before = spans(st)
    saved: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    done: list[tuple[int, int, int, Answer]] = []

    def keep(h: int) -> None:
        if h not in saved:
            row, hist = np.empty(8), np.empty(st.host_hist.shape[1])
            working.save_row(h, st.S, row, hist)
            saved[h] = (row, hist)

    failed: tuple[int, Answer] | None = None
    for vm in vms:
        src = int(st.vm_host[vm])
        keep(src)
        st.remove(vm)
        ans = place(st, Ask(vm, excluded))
        if ans.host is None:
            st.vm_host[vm] = src
            failed = (vm, ans)
            break
        keep(ans.host)
        st.add(vm, ans.host)
        st.take_slots(src, ans.host)
        done.append((vm, src, ans.host, ans))
    if failed is None and not (spans(st) <= before).all():
        failed = (done[-1][0], Answer(None, {"the group would be split": 1}))
    if failed is None:
        return done, None
    for vm, src, dst, _ in done:
        st.vm_host[vm] = src
        st.host_busy[src] -= 1
        st.host_busy[dst] -= 1
    for h, (row, hist) in saved.items():
        working.restore_row(h, st.S, row, hist)
    return [], failed


def _unrepaired(st: State, draft: Draft, v: Violation, why: str,
                failed: tuple[int, Answer] | None = None) -> None:
    snap = st.snap
    names = tuple(snap.vm_names[u] for u in v.vms)
    draft.problems.append(Problem(ProblemKind.VIOLATION, host=snap.host_names[v.host],
                                  vms=names[:5], why=f"{v.why}; not repaired: {why}"))
    for u in v.vms:
        h = int(st.vm_host[u])
        ans = failed[1] if failed is not None and failed[0] == u else Answer(None)
        draft.decisions.append(decision(st, u, h, f"repair: {v.why}", ans, f"kept: {why}"))


def held_alone(st: State, over: np.ndarray, draft: Draft) -> None:
    """An explain row for each keep-together VM on an overloaded host: relief does not move
    it alone (its group moves only whole, by a drain or a repair)."""
    alone = st.solo_mask & ~st.fixed_mask & (st.vm_host >= 0)
    for v in np.flatnonzero(alone).tolist():
        h = int(st.vm_host[v])
        if over[h] and v not in draft.moved:
            draft.decisions.append(Decision(
                st.snap.vm_names[v], st.snap.host_names[h], f"overload: {st.snap.host_names[h]}",
                "kept: keep-together VMs move only with their group"))


def _by_host(st: State, vms: np.ndarray) -> dict[int, list[int]]:
    """The VMs by host; one in flight counts where it is going (a group whose drain is
    half done is not split)."""
    out: dict[int, list[int]] = {}
    going = st.snap.vm_migrating_to
    for v in vms.tolist():
        h = int(going[v]) if going[v] >= 0 else int(st.vm_host[v])
        if h >= 0:
            out.setdefault(h, []).append(v)
    return out


def _with_mates(st: State, vm: int, host: int) -> list[int]:
    """`vm` and, transitively, its keep-together mates on `host` (they leave together)."""
    if st.together.shape[1] == 0:
        return [vm]
    out, todo = {vm}, [vm]
    on = st.vm_host == host
    while todo:
        u = todo.pop()
        mates = np.flatnonzero(on & (st.together & st.together[u]).any(axis=1)).tolist()
        for m in mates:
            if m not in out:
                out.add(m)
                todo.append(m)
    return sorted(out)


def _rank(st: State, v: int) -> int:
    return 1 if st.prio is None else int(st.prio[v])


def _order(st: State, vms: list[int]) -> tuple[int, ...]:
    """Lowest priority first, then by index."""
    return tuple(sorted(vms, key=lambda v: (_rank(st, v), v)))


def _group_names(per_vm: list[frozenset[str]], n: int) -> list[str]:
    names = sorted({g for gs in per_vm for g in gs})
    return [groups.shown(g) for g in names] if len(names) == n else [str(k) for k in range(n)]
