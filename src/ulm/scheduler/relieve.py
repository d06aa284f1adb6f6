"""Relief: VMs leave overloaded hosts (detector -> selection -> placement).

Selection runs on every overloaded host first, then all the selected VMs are placed together,
biggest first (`loops.place_many`). With VM priorities (`ulm.priority`, `gates`) the lowest
leave a host first and the highest are placed first: under shortage the lowest stay
unplaced."""

from __future__ import annotations

import numpy as np

from ulm.arrays import I64, B
from ulm.model import Decision
from ulm.problems import Problem, ProblemKind
from ulm.scheduler import loops, working
from ulm.scheduler.draft import TOP_N, Draft, decision, reasons, record
from ulm.scheduler.filters import MASKED
from ulm.scheduler.limits import exceeds, exceeds_each, tolerance
from ulm.scheduler.placement import Answer, answer_of, maintenance, params
from ulm.scheduler.priority import lowest
from ulm.scheduler.selection import KEYED, RULES
from ulm.scheduler.state import State


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
    chosen = _select(st, over, draft, compiled=st.prio is None)
    _held(st, over, draft)
    demand = st.lists.demand
    if st.policy.compat == "cloudsim":  # CloudSim's stable sort: ties keep selection order
        chosen.sort(key=lambda c: -demand[c[0]])
    else:
        chosen.sort(key=lambda c: (-demand[c[0]], c[0]))
    if st.prio is not None:  # stable: within a rank, the order above
        rank = st.prio.tolist()
        chosen.sort(key=lambda c: -rank[c[0]])
    if not chosen:
        return
    vms = np.array([c[0] for c in chosen], np.int64)
    srcs = np.array([c[1] for c in chosen], np.int64)
    where, counts, top_h, top_c, n_top = loops.place_many(
        vms, srcs, params(st), over | maintenance(st), st.V, st.H, st.S,
        draft.budget_left(st.policy), TOP_N)
    dst = where.tolist()
    rows, hs, cs, ks = counts.tolist(), top_h.tolist(), top_c.tolist(), n_top.tolist()
    # The answers of VMs that fit nowhere, by their counts: on a crowded cluster tens of
    # thousands share a few rows of counts, and each answer's names and text were most of
    # the Python here. A row naming a masked filter depends on the VM (`answer_of`): not kept.
    nowhere: dict[tuple[int, ...], tuple[Answer, str]] = {}
    for i, (vm, src, trigger) in enumerate(chosen):
        name = st.snap.vm_names[vm]
        if dst[i] == -2:
            if not draft.budget_hit:
                draft.budget_spent(st.policy, f"relief of overloaded hosts ({dst.count(-2)} "
                                   "VM(s) kept)")
            draft.decisions.append(Decision(name, st.snap.host_names[src], trigger,
                                            draft.kept_for_budget(st.policy)))
            continue
        if dst[i] >= 0 and not draft.explain:  # moved; nobody reads why
            record(st, draft, [vm], src, [dst[i]], trigger)
            continue
        if ks[i] == 0:
            row = tuple(rows[i])
            known = nowhere.get(row)
            if known is None:
                ans = answer_of(rows[i], [], [], st, vm)
                known = (ans, reasons(ans))
                if not any(row[m] for m in MASKED):
                    nowhere[row] = known
            ans, why = known
            draft.decisions.append(decision(st, vm, src, trigger, ans, "kept: no host fits"))
            draft.problems.append(Problem(ProblemKind.UNPLACED, host=st.snap.host_names[src],
                                          vm=name, why=why))
            continue
        ans = answer_of(rows[i], hs[i][:ks[i]], cs[i][:ks[i]], st, vm)
        record(st, draft, [vm], src, [dst[i]], trigger)  # dst[i]: the best host, ans.host
        draft.decisions.append(decision(st, vm, src, trigger, ans,
                                         f"moved to {st.snap.host_names[dst[i]]}"))


def _select(st: State, over: B, draft: Draft, compiled: bool = True
            ) -> list[tuple[int, int, str]]:
    """VMs leave each overloaded host, one by one by the selection rule, until it is no
    longer overloaded (CPU by the detector, or memory): (VM, host, trigger) in order.

    The rules with a key (and "cost") run compiled (`loops.select`); `rs` and `mc` run in the
    Python loop below, which does the same for any rule (a test holds the two together). With
    priorities it runs the loop too, offering the rule only the lowest rank left on the host:
    a higher-priority VM leaves only once every lower one has."""
    hosts = np.flatnonzero(over)
    triggers = {h: _trigger(st, h) for h in hosts.tolist()}  # the load before anything left
    name = st.policy.selection.rule
    if compiled and (name in KEYED or name == "cost"):
        moved = np.zeros(st.snap.n_vms, np.bool_)
        moved[list(draft.moved)] = True
        key = KEYED[name](st) if name in KEYED else np.zeros(st.snap.n_vms)
        vms, at, stuck = loops.select(
            hosts, st.scan_params, st.V, st.S, st.snap.host_cpu, st.snap.host_mem,
            st.solo_mask, moved, loops.KEY_RULE if name in KEYED
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
        movable = [v for v in on_host if not st.solo_mask[v] and v not in draft.moved]
        mem_over = mem_exceeds(host)
        while True:
            if not movable:
                _stays_overloaded(st, draft, host)
                break
            vm = rule(st, host, lowest(st, movable))
            st.remove(vm)
            movable.remove(vm)
            on_host.remove(vm)
            chosen.append((vm, host, triggers[host]))
            if working.host_over(host, st.scan_params, st.S, st.snap.host_cpu):
                continue
            if not mem_over or not mem_exceeds(host):  # memory use only falls
                break
    return chosen


def _held(st: State, over: B, draft: Draft) -> None:
    """An explain row for each VM on an overloaded host that stays because a migration of
    it failed recently (the executor's back-off, `Snapshot.vm_backoff_until`), or — when
    the rows are read — because an anti-thrash gate or `pin_critical` holds it (`gates`)."""
    with np.errstate(invalid="ignore"):
        backing = st.snap.vm_backoff_until > st.now
    held = backing | st.gated if draft.explain else backing
    if not held.any():
        return
    for v in np.flatnonzero(held & (st.vm_host >= 0)).tolist():
        h = int(st.vm_host[v])
        if over[h]:
            draft.decisions.append(Decision(st.snap.vm_names[v], st.snap.host_names[h],
                                            _trigger(st, h), f"kept: {st.fixed[v]}"))


def _stays_overloaded(st: State, draft: Draft, host: int) -> None:
    stuck = [st.snap.vm_names[v] for v in st.vms_on(host).tolist()]
    draft.problems.append(Problem(ProblemKind.STAYS_OVERLOADED, host=st.snap.host_names[host],
                                  vms=tuple(stuck[:5])))


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
