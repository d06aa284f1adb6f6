"""`schedule(snapshot, policy, now) -> Plan`: the whole decision, as a pure function.

The round, top to bottom: evacuate hosts in maintenance, relieve overloaded hosts (detector ->
selection -> placement), consolidate under-loaded hosts (all-or-nothing), then decide power.
Every VM considered gets a row in the explain table; whatever cannot be done is a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ulm.arrays import F64, I64, B
from ulm.calendar import Period
from ulm.model import Action, Decision, Efficacy, HostState, Move, Plan
from ulm.policy import Policy
from ulm.scheduler import loops, power, working
from ulm.scheduler.drain import check_drain
from ulm.scheduler.limits import exceeds, exceeds_each, tolerance
from ulm.scheduler.placement import Answer, Ask, answer, maintenance, params, place, verdict
from ulm.scheduler.selection import KEYED, RULES
from ulm.scheduler.state import State
from ulm.snapshot import Snapshot

TOP_N = 3  # best hosts shown per VM in the explain table


@dataclass
class Draft:
    """What the round has decided so far."""

    moves: list[Move] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    destinations: set[int] = field(default_factory=set)
    moved: set[int] = field(default_factory=set)  # a VM moves at most once per plan
    budget_hit: bool = False
    explain: bool = True  # a decision row for every VM that moves

    def budget_left(self, policy: Policy) -> int:
        limit = policy.gates.max_moves_per_round
        return 1 << 62 if limit is None else limit - len(self.moves)


def schedule(snapshot: Snapshot, policy: Policy, now: float, explain: bool = True) -> Plan:
    """The plan for this snapshot. `explain=False` leaves out the explain rows of VMs that
    move (what was rejected, the best scores): the same plan, for the simulator, which makes
    ~31,000 moves a simulated day and reads none of them."""
    pol, period, notes = _in_force(policy, now)
    st = State.of(snapshot, pol, now)
    draft = Draft(problems=notes, explain=explain)
    before = st.utilisation().copy()
    over = overloaded_hosts(st)
    n_over_before = int(over.sum())
    if snapshot.host_stale.any():
        _stale_hosts(st, draft)
    evacuate(st, draft, over)
    relieve(st, over, draft)
    if pol.balance.enabled:
        balance(st, over, draft)
    if pol.consolidation.enabled:
        consolidate(st, over, draft)
    wake = (power.wake_for_office(st) if period is Period.PRE_OFFICE
            else power.wake(st, draft.problems))
    actions: list[Action] = [*wake, *draft.moves, *power.sleep(st)]
    return Plan(
        snapshot_id=snapshot.id,
        policy_digest=policy.digest,
        created_at=now,
        actions=tuple(actions),
        decisions=tuple(draft.decisions),
        problems=tuple(draft.problems),
        efficacy=_efficacy(st, before, n_over_before, draft),
    )


def _in_force(policy: Policy, now: float) -> tuple[Policy, Period, list[str]]:
    """The calendar's verdict: which profile applies, and what a freeze or the morning forbid.

    Before office hours nothing is packed (hosts are being woken); during a change freeze
    nothing is packed or powered off — relieving overload and draining for maintenance go on,
    because they protect the service.
    """
    pol, period, freeze = policy.effective(now)
    notes: list[str] = []
    if freeze is not None or period is Period.PRE_OFFICE:
        off = pol.consolidation.model_copy(update={"enabled": False})
        pol = pol.model_copy(update={"consolidation": off})
        if freeze is not None:
            notes.append(f"change freeze until {freeze.end.isoformat()}"
                         f"{': ' + freeze.reason if freeze.reason else ''}: "
                         "no consolidation or power-off")
    return pol, period, notes


def _stale_hosts(st: State, draft: Draft) -> None:
    """One explain row per ON host whose own figures went stale: why nothing moves off or
    onto it (its load is unknown, not its last figure)."""
    snap = st.snap
    for h in np.flatnonzero(snap.host_stale & snap.host_on).tolist():
        last = snap.host_measured[h][~np.isnan(snap.host_measured[h])]
        figure = f" (last figure {last[-1]:.0%})" if len(last) else ""
        draft.decisions.append(Decision(
            "", snap.host_names[h], f"stale host metrics{figure}",
            "kept: host figures stale; neither source nor destination"))


def overloaded_hosts(st: State) -> B:
    """Hosts that are ON, hold VMs and are overloaded on CPU (the detector) or memory."""
    cpu = _cpu_over(st, np.arange(st.snap.n_hosts))
    n = st.snap.n_hosts
    mem: B = exceeds_each(st.host_mem_use, st.snap.host_mem,
                       np.full(n, st.policy.overload.memory_threshold), tolerance(st.policy))
    active = (st.host_count > 0) & ~st.snap.host_stale
    if st.policy.compat != "cloudsim":
        active &= st.snap.host_on
    return (cpu | mem) & active


def _cpu_over(st: State, hosts: I64) -> B:
    """The policy's detector on these hosts in the working placement (compiled; LR reads
    the lines the state keeps, `State.host_lr`: the numbers the placement check adds to)."""
    return working.hosts_over(hosts, st.scan_params, st.S, st.snap.host_cpu)


def relieve(st: State, over: B, draft: Draft) -> None:
    """Selection on every overloaded host first, then placement of all selected VMs,
    biggest first (best-fit decreasing), so the hardest VMs choose before the easy ones."""
    chosen = _select(st, over, draft)
    _backing_off(st, over, draft)
    demand = st.lists.demand
    if st.policy.compat == "cloudsim":  # CloudSim's stable sort: ties keep selection order
        chosen.sort(key=lambda c: -demand[c[0]])
    else:
        chosen.sort(key=lambda c: (-demand[c[0]], c[0]))
    if not chosen:
        return
    vms = np.array([c[0] for c in chosen], np.int64)
    srcs = np.array([c[1] for c in chosen], np.int64)
    where, counts, top_h, top_c, n_top = loops.place_many(
        vms, srcs, params(st), over | maintenance(st), st.V, st.H, st.S,
        draft.budget_left(st.policy), TOP_N)
    dst = where.tolist()
    for i, (vm, src, trigger) in enumerate(chosen):
        name = st.snap.vm_names[vm]
        if dst[i] == -2:
            if not draft.budget_hit:
                draft.problems.append("move budget of this round used up: "
                                      f"{st.policy.gates.max_moves_per_round} moves")
                draft.budget_hit = True
            draft.decisions.append(Decision(name, st.snap.host_names[src], trigger,
                                            "kept: move budget used up"))
            continue
        if dst[i] >= 0 and not draft.explain:  # moved; nobody reads why
            _record(st, draft, [vm], src, [dst[i]], trigger)
            continue
        ans = answer(counts[i], top_h[i], top_c[i], int(n_top[i]))
        if ans.host is None:
            draft.decisions.append(_decision(st, vm, src, trigger, ans, "kept: no host fits"))
            draft.problems.append(f"{name} on {st.snap.host_names[src]} could not be placed: "
                                  f"{_reasons(ans)}")
            continue
        _record(st, draft, [vm], src, [ans.host], trigger)
        draft.decisions.append(_decision(st, vm, src, trigger, ans,
                                         f"moved to {st.snap.host_names[ans.host]}"))


def _record(st: State, draft: Draft, vms: list[int], src: int, dsts: list[int],
            trigger: str) -> None:
    """Adds moves from `src` that the working state already holds (placement and slots) to
    the plan."""
    names, vm_names, ram = st.snap.host_names, st.snap.vm_names, st.lists.ram
    draft.moved.update(vms)
    draft.destinations.update(dsts)
    draft.moves.extend([Move(vm_names[v], names[src], names[d], trigger, ram[v])
                        for v, d in zip(vms, dsts, strict=True)])


def _select(st: State, over: B, draft: Draft, compiled: bool = True
            ) -> list[tuple[int, int, str]]:
    """VMs leave each overloaded host, one by one by the selection rule, until it is no
    longer overloaded (CPU by the detector, or memory): (VM, host, trigger) in order.

    The rules with a key (and "cost") run compiled (`loops.select`); `rs` and `mc` run in the
    Python loop below, which does the same for any rule (a test holds the two together)."""
    hosts = np.flatnonzero(over)
    triggers = {h: _trigger(st, h) for h in hosts.tolist()}  # the load before anything left
    name = st.policy.selection.rule
    if compiled and (name in KEYED or name == "cost"):
        moved = np.zeros(st.snap.n_vms, np.bool_)
        moved[list(draft.moved)] = True
        key = KEYED[name](st) if name in KEYED else np.zeros(st.snap.n_vms)
        vms, at, stuck = loops.select(
            hosts, st.scan_params, st.V, st.S, st.snap.host_cpu, st.snap.host_mem,
            st.fixed_mask, moved, loops.KEY_RULE if name in KEYED
            else loops.COST_RULE, np.array(key, np.float64))  # a copy: one compiled signature
        for h in stuck.tolist():
            _stays_overloaded(st, draft, h)
        return [(v, h, triggers[h]) for v, h in zip(vms.tolist(), at.tolist(), strict=True)]
    rule = RULES[name]
    chosen: list[tuple[int, int, str]] = []
    limit, tol = st.policy.overload.memory_threshold, tolerance(st.policy)

    def mem_exceeds(host: int) -> bool:
        return bool(exceeds(float(st.host_mem_use[host]), float(st.snap.host_mem[host]),
                            limit, tol))

    for host in hosts.tolist():
        on_host = st.vms_on(host).tolist()
        movable = [v for v in on_host if not st.fixed[v] and v not in draft.moved]
        mem_over = mem_exceeds(host)
        while True:
            if not movable:
                _stays_overloaded(st, draft, host)
                break
            vm = rule(st, host, movable)
            st.remove(vm)
            movable.remove(vm)
            on_host.remove(vm)
            chosen.append((vm, host, triggers[host]))
            if working.host_over(host, st.scan_params, st.S, st.snap.host_cpu):
                continue
            if not mem_over or not mem_exceeds(host):  # memory use only falls
                break
    return chosen


def _backing_off(st: State, over: B, draft: Draft) -> None:
    """An explain row for each VM on an overloaded host that stays because a migration of
    it failed recently (the executor's back-off, `Snapshot.vm_backoff_until`)."""
    with np.errstate(invalid="ignore"):
        backing = st.snap.vm_backoff_until > st.now
    if not backing.any():
        return
    for v in np.flatnonzero(backing & (st.vm_host >= 0)).tolist():
        h = int(st.vm_host[v])
        if over[h]:
            draft.decisions.append(Decision(st.snap.vm_names[v], st.snap.host_names[h],
                                            _trigger(st, h), f"kept: {st.fixed[v]}"))


def _stays_overloaded(st: State, draft: Draft, host: int) -> None:
    stuck = [st.snap.vm_names[v] for v in st.vms_on(host).tolist()]
    draft.problems.append(f"{st.snap.host_names[host]} stays overloaded: no movable VM left "
                          f"({', '.join(stuck[:5]) or 'none'})")


def evacuate(st: State, draft: Draft, over: B) -> None:
    """Hosts in maintenance are drained live, all-or-nothing per host, never onto a host that
    is itself overloaded."""
    for host in np.flatnonzero(maintenance(st) & (st.host_count > 0)):
        drain(st, draft, int(host), f"evacuation: {st.snap.host_names[int(host)]} in maintenance",
              allow_empty=True, excluded=maintenance(st) | over)


def drain(st: State, draft: Draft, host: int, trigger: str, allow_empty: bool,
          excluded: B | None = None) -> bool:
    """Moves every VM off `host` or none of them (`loops.drain`); says why when it cannot."""
    excl = (maintenance(st) if excluded is None else excluded).copy()
    excl[host] = True
    what, vms, dst, counts, top_h, top_c, n_top = loops.drain(
        host, params(st, allow_empty), excl, st.V, st.H, st.S, st.fixed_mask,
        draft.budget_left(st.policy), TOP_N)
    if what == loops.STUCK:
        _cannot_empty(st, draft, host)
    if what == loops.NO_FIT and trigger.startswith("evacuation"):
        i = int(np.argmax(dst == -1))  # the VM that found no host; nothing moved
        vm = int(vms[i])
        why = _reasons(answer(counts[i], top_h[i], top_c[i], int(n_top[i])))
        draft.problems.append(f"the drain of {st.snap.host_names[host]} does not fit: "
                              f"{st.snap.vm_names[vm]} ({st.snap.vm_mem_size[vm]:.0f} MiB) has "
                              f"no host: {why}")
    if what != loops.DRAINED:
        return False
    _drained(st, draft, host, trigger, vms, dst, counts, top_h, top_c, n_top)
    return True


def _drained(st: State, draft: Draft, host: int, trigger: str, vms: I64, dsts: I64,
             counts: I64, top_h: I64, top_c: F64, n_top: I64) -> None:
    """A drain's moves (already in the working state) into the plan, with their explain rows."""
    vm_list, dst_list = vms.tolist(), dsts.tolist()
    _record(st, draft, vm_list, host, dst_list, trigger)
    if draft.explain:
        for i, (vm, dst) in enumerate(zip(vm_list, dst_list, strict=True)):
            draft.decisions.append(_decision(
                st, vm, host, trigger, answer(counts[i], top_h[i], top_c[i], int(n_top[i])),
                f"moved to {st.snap.host_names[dst]}"))


def _cannot_empty(st: State, draft: Draft, host: int) -> None:
    vms = st.vms_on(host)
    stuck = [st.snap.vm_names[v] for v in vms if st.fixed[v]]
    draft.problems.append(f"cannot empty {st.snap.host_names[host]}: {', '.join(stuck[:5])} "
                          f"may not move ({st.fixed[int(vms[0])] if len(vms) else ''})".rstrip())


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
    while draft.budget_left(st.policy) > 0:
        util = st.utilisation()
        # "too hot" is the comparison placement's `max_after` makes: a host balancing filled
        # to the limit is not hot next time
        too_hot = exceeds_each(st.host_cur, st.snap.host_cpu, limits, tolerance(st.policy))
        hot = on & ~done & too_hot
        hot[list(draft.destinations)] = False
        if not hot.any():
            return
        h = int(np.flatnonzero(hot)[np.argmax(util[hot])])
        cands = [v for v in st.vms_on(h).tolist() if not st.fixed[v] and v not in draft.moved]
        if not cands:
            done[h] = True
            continue
        vm = select(st, h, cands)
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
        _record(st, draft, [vm], h, [answer.host], trigger)
        if draft.explain:
            draft.decisions.append(_decision(st, vm, h, trigger, answer,
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

    The loop is compiled (`loops.consolidate`: it tries hundreds of hosts a round); this
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
    blocked = np.zeros(st.snap.n_hosts, np.bool_)
    blocked[list(draft.destinations)] = True
    limit = -1 if rule.max_hosts_per_round is None else rule.max_hosts_per_round
    budget = min(draft.budget_left(st.policy), 1 << 62)
    hosts, what, first, util, vms, dsts, counts, top_h, top_c, n_top = loops.consolidate(
        params(st, allow_empty=False), st.V, st.H, st.S, ranked, tried, excluded, blocked,
        st.fixed_mask, rule.underload_threshold, limit, budget, rule.headroom, TOP_N)
    ends = [*first.tolist()[1:], len(vms)]
    what_list = what.tolist()
    for e, host in enumerate(hosts.tolist()):
        if what_list[e] == loops.STUCK:
            _cannot_empty(st, draft, host)
        if what_list[e] != loops.DRAINED:
            continue
        frac = st.start_util[host] if compat else util[e]
        moves = slice(int(first[e]), ends[e])
        _drained(st, draft, host, f"consolidation: {st.snap.host_names[host]} at {frac:.0%} CPU",
                 vms[moves], dsts[moves], counts[moves], top_h[moves], top_c[moves],
                 n_top[moves])


def _trigger(st: State, host: int) -> str:
    rule = st.policy.overload
    util = float(st.host_cur[host] / st.snap.host_cpu[host])
    name = st.snap.host_names[host]
    if rule.detector == "threshold" and exceeds(float(st.host_cur[host]),
                                                float(st.snap.host_cpu[host]), rule.threshold,
                                                tolerance(st.policy)):
        how = (f"> {rule.threshold:.0%}" if rule.sustain <= 1
               else f"> {rule.threshold:.0%} in {rule.sustain} of the last {rule.window} samples")
        return f"overload: {name} CPU {util:.0%} {how}"
    if rule.detector not in ("threshold", "none") and util > 0:
        return f"overload: {name} CPU {util:.0%} ({rule.detector.upper()} detector)"
    return f"memory pressure: {name}"


def _reasons(answer: Answer) -> str:
    if not answer.rejections:
        return "no candidate host"
    return ", ".join(f"{reason} ({n})" for reason, n in answer.rejections.items())


def _decision(st: State, vm: int, src: int, trigger: str, answer: Answer,
              outcome: str) -> Decision:
    return Decision(
        vm=st.snap.vm_names[vm],
        host=st.snap.host_names[src],
        trigger=trigger,
        outcome=outcome,
        rejections=dict(answer.rejections),
        top_scores=tuple((st.snap.host_names[h], round(s, 6)) for h, s in answer.top),
    )


def _efficacy(st: State, before: NDArray[np.float64], n_over_before: int,
              draft: Draft) -> Efficacy:
    after = st.utilisation()
    active_before = int(np.count_nonzero(np.bincount(st.snap.vm_host[st.snap.vm_host >= 0],
                                                     minlength=st.snap.n_hosts)))
    active_after = int(np.count_nonzero(st.host_count))
    return Efficacy(
        hosts_overloaded_before=n_over_before,
        hosts_overloaded_after=int(overloaded_hosts(st).sum()),
        hosts_freed=max(active_before - active_after, 0),
        peak_cpu_before=float(before.max(initial=0.0)),
        peak_cpu_after=float(after.max(initial=0.0)),
        mem_to_move_mib=float(sum(m.mem_mib for m in draft.moves)),
    )


def check_move(snapshot: Snapshot, policy: Policy, move: Move) -> str | None:
    """The core's own placement rule applied to one move against a fresh snapshot.

    The executor calls it right before a migration: None if the move is still allowed, else
    the first filter that rejects it. Stale moves are refused, never patched.
    """
    vm = snapshot.vm_index.get(move.vm)
    dst = snapshot.host_index.get(move.dst)
    if vm is None or dst is None:
        return f"{move.vm if vm is None else move.dst} is not in the current snapshot"
    st = State.of(snapshot, policy, snapshot.taken_at)
    st.remove(vm)
    why = verdict(st, Ask(vm, np.zeros(snapshot.n_hosts, np.bool_)), dst)
    return None if why is None else f"{move.dst} no longer fits {move.vm}: {why}"


def load_compiled() -> None:
    """Loads the compiled kernels (scan, working, loops, tally) by planning a tiny cluster.

    numba loads them from its cache on first use (a few tenths of a second; after an install
    or an edit it compiles them, ~30 s, once). A one-off per process, like an import: the
    simulator calls this before its clock starts, so that a run's wall time is the run's.
    """
    hot = np.array([[0.5] * 9 + [1.0], [0.1] * 10, [0.1] * 10])
    snap = Snapshot(
        taken_at=0.0, host_names=("a", "b"), host_cpu=np.array([1000.0, 1000.0]),
        host_mem=np.array([4096.0, 4096.0]), host_cores=np.array([4, 4], np.int64),
        host_state=(HostState.ON, HostState.ON), vm_names=("x", "y", "z"),
        vm_host=np.array([0, 0, 1], np.int64), vm_cpu_size=np.full(3, 1000.0),
        vm_mem_size=np.full(3, 512.0), vm_cpu=hot[:, -1] * 1000, vm_mem=np.full(3, 256.0),
        vm_history=hot * 1000)
    for rule, compat in (("lr", "cloudsim"), ("threshold", "none")):
        pol = Policy.model_validate({
            "overload": {"detector": rule}, "placement": {"strategy": "pabfd"},
            "consolidation": {"enabled": True}, "balance": {"enabled": True}, "compat": compat})
        for move in schedule(snap, pol, 0.0).moves[:1]:
            check_move(snap, pol, move)
        check_drain(snap, pol, "b", 0.0)  # an evacuation: `loops.drain`
