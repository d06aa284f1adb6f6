"""Emptying hosts: evacuation of hosts in maintenance, balancing, consolidation.

A drain is all-or-nothing (`loops.drain`, `emptying.consolidate`): either every VM of the host
leaves or none does, and the plan says why."""

from __future__ import annotations

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.model import Decision
from ulm.problems import Problem, ProblemKind
from ulm.scheduler import emptying, loops
from ulm.scheduler.draft import TOP_N, Draft, decision, reasons, record
from ulm.scheduler.limits import exceeds_each, tolerance
from ulm.scheduler.placement import Ask, answer, maintenance, params, place
from ulm.scheduler.priority import lowest
from ulm.scheduler.selection import RULES
from ulm.scheduler.state import State


def evacuate(st: State, draft: Draft, over: B) -> None:
    """Hosts in maintenance are drained live, all-or-nothing per host, never onto a host that
    is itself overloaded. A drain for maintenance is never held back by a move budget (the
    round's or the day's: the host goes down whether or not its VMs left), but its moves count
    against both, and going past the day's is said (`check_drain` says it at booking time).
    Nor is it held back by a VM's cool-down, daily move limit or `pin_critical` (`gates`):
    only the hard reasons (`State.drain_mask`) keep a VM on a host in maintenance."""
    for host in np.flatnonzero(maintenance(st) & (st.host_count > 0)):
        day_left = draft.day.left
        if drain(st, draft, int(host), f"evacuation: {st.snap.host_names[int(host)]} in "
                 "maintenance", allow_empty=True, excluded=maintenance(st) | over,
                 budget=1 << 62, fixed=st.drain_mask) and day_left is not None \
                and len(draft.moves) > day_left:
            draft.problems.append(Problem(
                ProblemKind.DRAIN_PAST_BUDGET, host=st.snap.host_names[int(host)],
                limit=draft.day.limit or 0, used=draft.day.used + len(draft.moves)))


def drain(st: State, draft: Draft, host: int, trigger: str, allow_empty: bool,
          excluded: B | None = None, budget: int | None = None, fixed: B | None = None
          ) -> bool:
    """Moves every VM off `host` or none of them (`loops.drain`); says why when it cannot.
    `budget`: the moves it may make (None: what the plan's budgets leave); `fixed`: the VMs
    that may not move (None: `State.fixed_mask`)."""
    held = st.fixed_mask if fixed is None else fixed
    excl = (maintenance(st) if excluded is None else excluded).copy()
    excl[host] = True
    what, vms, dst, counts, top_h, top_c, n_top = loops.drain(
        host, params(st, allow_empty), excl, st.V, st.H, st.S, held,
        draft.budget_left(st.policy) if budget is None else budget, TOP_N)
    if what == loops.STUCK:
        _cannot_empty(st, draft, host, held)
    if what == loops.NO_FIT:
        i = int(np.argmax(dst == -1))  # the VM that found no host; nothing moved
        vm = int(vms[i])
        draft.problems.append(Problem(
            ProblemKind.DRAIN_NO_FIT, host=st.snap.host_names[host], vm=st.snap.vm_names[vm],
            mem_mib=float(st.snap.vm_mem_size[vm]),
            why=reasons(answer(counts[i], top_h[i], top_c[i], int(n_top[i]), st, vm))))
    if what != loops.DRAINED:
        return False
    _drained(st, draft, host, trigger, vms, dst, counts, top_h, top_c, n_top)
    return True


def _drained(st: State, draft: Draft, host: int, trigger: str, vms: I64, dsts: I64,
             counts: I64, top_h: I64, top_c: F64, n_top: I64) -> None:
    """A drain's moves (already in the working state) into the plan, with their explain rows."""
    vm_list, dst_list = vms.tolist(), dsts.tolist()
    record(st, draft, vm_list, host, dst_list, trigger)
    if draft.explain:
        for i, (vm, dst) in enumerate(zip(vm_list, dst_list, strict=True)):
            ans = answer(counts[i], top_h[i], top_c[i], int(n_top[i]), st, vm)
            draft.decisions.append(decision(st, vm, host, trigger, ans,
                                            f"moved to {st.snap.host_names[dst]}"))


def _cannot_empty(st: State, draft: Draft, host: int, held: B) -> None:
    """Says which VMs keep `host` from emptying. A VM an earlier plan moves (queued in the
    background or in flight: `vm_migrating_to`) is on its way off: not one of them, and a
    host held only by such VMs is being emptied already, not stuck."""
    vms = st.vms_on(host)
    leaving = st.snap.vm_migrating_to
    stuck = [int(v) for v in vms if held[v] and leaving[v] < 0]
    if not stuck and any(leaving[v] >= 0 for v in vms):
        return
    draft.problems.append(Problem(ProblemKind.CANNOT_EMPTY, host=st.snap.host_names[host],
                                  vms=tuple(st.snap.vm_names[v] for v in stuck[:5]),
                                  why=st.fixed[stuck[0]] if stuck else ""))


def _kept(st: State, draft: Draft, host: int, trigger: str, what: str) -> None:
    """The day's migration budget leaves `host`'s balancing or emptying undone: a problem
    (once a plan) and an explain row for the host."""
    draft.budget_spent(st.policy, what)
    draft.decisions.append(Decision("", st.snap.host_names[host], trigger,
                                    draft.kept_for_budget(st.policy)))


def balance(st: State, over: B, draft: Draft) -> None:
    """Hosts far above the mean hand VMs to the coolest host, while that narrows the gap."""
    rule = st.policy.balance
    on = st.usable & ~st.maintenance
    if on.sum() < 2:
        return
    limit = float(st.host_cur[on].sum() / st.snap.host_cpu[on].sum()) + rule.spread
    limits = np.full(st.snap.n_hosts, limit)
    select = RULES[st.policy.selection.rule]
    done = over.copy()
    while True:
        util = st.utilisation()
        # "too hot" is the comparison placement's `max_after` makes: a host balancing filled
        # to the limit is not hot next time
        too_hot = exceeds_each(st.host_cur, st.snap.host_cpu, limits, tolerance(st.policy))
        hot = on & ~done & too_hot
        hot[list(draft.destinations)] = False
        if not hot.any():
            return
        h = int(np.flatnonzero(hot)[np.argmax(util[hot])])
        if draft.budget_left(st.policy) <= 0:
            if draft.day_spent(st.policy):  # the day's budget is said; the round's never was
                _kept(st, draft, h, f"balance: {st.snap.host_names[h]} CPU {util[h]:.0%} > "
                      f"mean + spread {limit:.0%}", f"balancing of {st.snap.host_names[h]}")
            return
        # a keep-together VM never moves alone (`groups`); the lowest priority leaves first
        cands = [v for v in st.vms_on(h).tolist()
                 if not st.solo_mask[v] and v not in draft.moved]
        if not cands:
            done[h] = True
            continue
        vm = select(st, h, lowest(st, cands))
        trigger = f"balance: {st.snap.host_names[h]} CPU {util[h]:.0%} > mean + spread " \
                  f"{limit:.0%}"
        st.remove(vm)
        answer = place(st, Ask(vm, over | st.maintenance | too_hot, max_after=limit,
                               ranking="balance"))
        if answer.host is None or not _narrows(st, h, answer.host, vm, rule.min_gain):
            st.add_back(vm, h)
            done[h] = True
            continue
        st.add(vm, answer.host)
        st.take_slots(h, answer.host)
        record(st, draft, [vm], h, [answer.host], trigger)
        if draft.explain:
            draft.decisions.append(decision(st, vm, h, trigger, answer,
                                             f"moved to {st.snap.host_names[answer.host]}"))


def _narrows(st: State, src: int, dst: int, vm: int, min_gain: float) -> bool:
    """The gap between source and destination shrinks by at least `min_gain` (VM not yet on
    the destination, already off the source)."""
    cap_s, cap_d = float(st.snap.host_cpu[src]), float(st.snap.host_cpu[dst])
    before = (st.host_cur[src] + st.vm_cpu[vm]) / cap_s - st.host_cur[dst] / cap_d
    after = abs(st.host_cur[src] / cap_s - (st.host_cur[dst] + st.demand[vm]) / cap_d)
    return bool(before - after >= min_gain)


def consolidate(st: State, over: B, draft: Draft) -> None:
    """Empties the least-loaded hosts, one at a time, so that they can be switched off.

    The loop is compiled (`emptying.consolidate`: it tries hundreds of hosts a round); this
    turns its events into moves, explain rows and problems, in order.
    """
    compat = st.policy.compat == "cloudsim"
    rule = st.policy.consolidation
    tried = over.copy()
    if compat:  # CloudSim: hosts at 0 % when the round began count as switched off
        excluded = over | maintenance(st) | (st.start_util == 0)
        tried |= st.start_util == 0
    else:
        excluded = over | maintenance(st) | (st.host_count == 0) | ~st.usable
    # CloudSim ranks by the utilisation at the round's start, whatever moved since: the order
    # is fixed (a stable sort: ties go to the lowest host index).
    order = np.argsort(st.start_util, kind="stable")
    ranked = order[(st.start_util[order] < rule.underload_threshold) & ~tried[order]]
    prio = np.zeros(0, np.int64) if st.prio is None else st.prio
    if len(prio):  # the lowest priority moves first: hosts whose top VM ranks lower first
        ranked = ranked[np.argsort(emptying.top_rank(prio, st.vm_host, st.snap.n_hosts)[ranked],
                                   kind="stable")]
    blocked = np.zeros(st.snap.n_hosts, np.bool_)
    blocked[list(draft.destinations)] = True
    limit = -1 if rule.max_hosts_per_round is None else rule.max_hosts_per_round
    budget = min(draft.budget_left(st.policy), 1 << 62)
    hosts, what, first, util, vms, dsts, counts, top_h, top_c, n_top = emptying.consolidate(
        params(st, allow_empty=False), st.V, st.H, st.S, ranked, tried, excluded, blocked,
        st.fixed_mask, rule.underload_threshold, limit, budget, rule.headroom, TOP_N,
        emptying.ORDERS[rule.order], prio)
    ends = [*first.tolist()[1:], len(vms)]
    what_list, host_list = what.tolist(), hosts.tolist()
    # only these outcomes leave a trace: a round may try hundreds of hosts that do not drain
    told = np.flatnonzero((what != loops.NO_FIT) & (what != loops.NO_HEADROOM))
    for e in told.tolist():
        host = host_list[e]
        if what_list[e] == loops.STUCK:
            _cannot_empty(st, draft, host, st.fixed_mask)
        if what_list[e] == loops.NO_BUDGET and draft.day_spent(st.policy):
            frac = st.start_util[host] if compat else util[e]
            name = st.snap.host_names[host]
            _kept(st, draft, host, f"consolidation: {name} at {frac:.0%} CPU",
                  f"consolidation of {name}")
        if what_list[e] != loops.DRAINED:
            continue
        frac = st.start_util[host] if compat else util[e]
        moves = slice(int(first[e]), ends[e])
        _drained(st, draft, host, f"consolidation: {st.snap.host_names[host]} at {frac:.0%} CPU",
                 vms[moves], dsts[moves], counts[moves], top_h[moves], top_c[moves],
                 n_top[moves])
