"""`schedule(snapshot, policy, now) -> Plan`: the whole decision, as a pure function.

The round, top to bottom: evacuate hosts in maintenance, relieve overloaded hosts (detector ->
selection -> placement), consolidate under-loaded hosts (all-or-nothing), then decide power.
Every VM considered gets a row in the explain table; whatever cannot be done is a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ulm.arrays import I64, B
from ulm.calendar import Period
from ulm.model import Action, Decision, Efficacy, Move, Plan
from ulm.policy import Policy
from ulm.scheduler import power
from ulm.scheduler.detectors import overloaded
from ulm.scheduler.placement import FILTERS, Answer, Ask, maintenance, place
from ulm.scheduler.selection import RULES
from ulm.scheduler.state import State
from ulm.snapshot import Snapshot


@dataclass
class Draft:
    """What the round has decided so far."""

    moves: list[Move] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    destinations: set[int] = field(default_factory=set)
    moved: set[int] = field(default_factory=set)  # a VM moves at most once per plan
    budget_hit: bool = False

    def budget_left(self, policy: Policy) -> int:
        limit = policy.gates.max_moves_per_round
        return 1 << 62 if limit is None else limit - len(self.moves)


def schedule(snapshot: Snapshot, policy: Policy, now: float) -> Plan:
    pol, period, notes = _in_force(policy, now)
    st = State.of(snapshot, pol, now)
    draft = Draft(problems=notes)
    before = st.utilisation().copy()
    over = overloaded_hosts(st)
    n_over_before = int(over.sum())
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


def overloaded_hosts(st: State) -> B:
    """Hosts that are ON, hold VMs and are overloaded on CPU (the detector) or memory."""
    hosts = np.arange(st.snap.n_hosts)
    cpu = overloaded(st.load(hosts), st.policy.overload)
    used_mem = np.bincount(st.vm_host[st.vm_host >= 0], weights=st.snap.vm_mem[st.vm_host >= 0],
                           minlength=st.snap.n_hosts)
    mem = used_mem > st.policy.overload.memory_threshold * st.snap.host_mem
    active = st.host_count > 0
    if st.policy.compat != "cloudsim":
        active &= st.snap.host_on
    return (cpu | mem) & active


def _still_over(st: State, host: int) -> bool:
    cpu = overloaded(st.load(np.array([host])), st.policy.overload)[0]
    vms = st.vms_on(host)
    mem = st.snap.vm_mem[vms].sum() > st.policy.overload.memory_threshold * st.snap.host_mem[host]
    return bool(cpu or mem)


def relieve(st: State, over: B, draft: Draft) -> None:
    """Selection on every overloaded host first, then placement of all selected VMs,
    biggest first (best-fit decreasing), so the hardest VMs choose before the easy ones."""
    rule = RULES[st.policy.selection.rule]
    chosen: list[tuple[int, int, str]] = []
    for host in np.flatnonzero(over):
        h = int(host)
        trigger = _trigger(st, h)
        while True:
            cands = np.array([v for v in st.vms_on(h) if not st.fixed[v]
                              and v not in draft.moved], np.int64)
            if not len(cands):
                stuck = [st.snap.vm_names[v] for v in st.vms_on(h)]
                draft.problems.append(f"{st.snap.host_names[h]} stays overloaded: no movable VM "
                                      f"left ({', '.join(stuck[:5]) or 'none'})")
                break
            vm = rule(st, h, cands)
            st.remove(vm)
            chosen.append((vm, h, trigger))
            if not _still_over(st, h):
                break
    if st.policy.compat == "cloudsim":  # CloudSim's stable sort: ties keep selection order
        chosen.sort(key=lambda c: -st.demand[c[0]])
    else:
        chosen.sort(key=lambda c: (-st.demand[c[0]], c[0]))
    for vm, src, trigger in chosen:
        _move_or_keep(st, draft, vm, src, trigger, Ask(vm, over | maintenance(st)))


def _move_or_keep(st: State, draft: Draft, vm: int, src: int, trigger: str, ask: Ask) -> bool:
    name = st.snap.vm_names[vm]
    if draft.budget_left(st.policy) <= 0:
        st.add_back(vm, src)
        if not draft.budget_hit:
            draft.problems.append("move budget of this round used up: "
                                  f"{st.policy.gates.max_moves_per_round} moves")
            draft.budget_hit = True
        draft.decisions.append(Decision(name, st.snap.host_names[src], trigger,
                                        "kept: move budget used up"))
        return False
    answer = place(st, ask)
    if answer.host is None:
        st.add_back(vm, src)
        draft.decisions.append(_decision(st, vm, src, trigger, answer, "kept: no host fits"))
        draft.problems.append(f"{name} on {st.snap.host_names[src]} could not be placed: "
                              f"{_reasons(answer)}")
        return False
    _commit(st, draft, vm, src, answer.host, trigger)
    draft.decisions.append(_decision(st, vm, src, trigger, answer,
                                     f"moved to {st.snap.host_names[answer.host]}"))
    return True


def _commit(st: State, draft: Draft, vm: int, src: int, dst: int, trigger: str,
            apply: bool = True) -> None:
    if apply:
        st.add(vm, dst)
    draft.moved.add(vm)
    st.host_busy[src] += 1
    st.host_busy[dst] += 1
    draft.destinations.add(dst)
    draft.moves.append(Move(st.snap.vm_names[vm], st.snap.host_names[src],
                            st.snap.host_names[dst], trigger,
                            float(st.snap.vm_mem_size[vm])))


def evacuate(st: State, draft: Draft, over: B) -> None:
    """Hosts in maintenance are drained live, all-or-nothing per host, never onto a host that
    is itself overloaded."""
    for host in np.flatnonzero(maintenance(st) & (st.host_count > 0)):
        drain(st, draft, int(host), f"evacuation: {st.snap.host_names[int(host)]} in maintenance",
              allow_empty=True, excluded=maintenance(st) | over)


def drain(st: State, draft: Draft, host: int, trigger: str, allow_empty: bool,
          excluded: B | None = None) -> bool:
    """Moves every VM off `host` or none of them; says why when it cannot."""
    vms = st.vms_on(host)
    name = st.snap.host_names[host]
    stuck = [st.snap.vm_names[v] for v in vms if st.fixed[v]]
    if stuck:
        draft.problems.append(f"cannot empty {name}: {', '.join(stuck[:5])} may not move "
                              f"({st.fixed[int(vms[0])] if len(vms) else ''})".rstrip())
        return False
    if len(vms) > draft.budget_left(st.policy):
        return False
    excl = maintenance(st) if excluded is None else excluded
    excl = excl.copy()
    excl[host] = True
    if not trigger.startswith("evacuation") and not _may_fit(st, vms, excl, allow_empty):
        return False
    order = sorted(vms.tolist(), key=lambda v: (-st.demand[v], v))
    placed: list[tuple[int, int, Answer]] = []
    for vm in order:
        st.remove(vm)
        answer = place(st, Ask(vm, excl, allow_empty=allow_empty))
        if answer.host is None:
            st.add_back(vm, host)
            for done, _, _ in reversed(placed):  # all-or-nothing: undo the partial drain
                st.remove(done)
                st.add_back(done, host)
            if trigger.startswith("evacuation"):
                short = st.snap.vm_names[vm]
                draft.problems.append(f"the drain of {name} does not fit: {short} "
                                      f"({st.snap.vm_mem_size[vm]:.0f} MiB) has no host: "
                                      f"{_reasons(answer)}")
            return False
        st.add(vm, answer.host)
        placed.append((vm, answer.host, answer))
    for vm, dst, answer in placed:  # already in place in the working state
        _commit(st, draft, vm, host, dst, trigger, apply=False)
        draft.decisions.append(_decision(st, vm, host, trigger, answer,
                                         f"moved to {st.snap.host_names[dst]}"))
    return True


def _may_fit(st: State, vms: I64, excluded: B, allow_empty: bool) -> bool:
    """A quick necessary condition for a drain: the hungriest VM (CPU) and the biggest (RAM)
    each fit on some host on their own. Consolidation tries hundreds of hosts a round and
    most fail on their first VM; this saves a full placement for each (same verdict)."""
    ok = ~excluded
    if st.policy.compat != "cloudsim":
        ok &= st.snap.host_on
    if not allow_empty:
        ok &= st.host_count > 0
    if not ok.any():
        return False
    pl, rule = st.policy.placement, st.policy.overload
    cap = st.snap.host_cpu[ok]
    room = cap * pl.cpu_overcommit
    if st.policy.compat != "cloudsim":  # CloudSim skips the health check for idle hosts
        if pl.max_cpu_after is not None:
            room = np.minimum(room, cap * pl.max_cpu_after)
        elif rule.detector == "threshold":
            room = np.minimum(room, cap * rule.threshold)
    if float(st.demand[vms].max()) > float((room - st.host_cur[ok]).max()) + 1e-6:
        return False
    mem_room = st.snap.host_mem[ok] * pl.mem_overcommit - st.host_mem[ok]
    return float(st.mem[vms].max()) <= float(mem_room.max()) + 1e-6


def balance(st: State, over: B, draft: Draft) -> None:
    """Hosts far above the mean hand VMs to the coolest host, while that narrows the gap."""
    rule = st.policy.balance
    on = st.snap.host_on & ~st.maintenance
    if on.sum() < 2:
        return
    limit = float(st.host_cur[on].sum() / st.snap.host_cpu[on].sum()) + rule.spread
    select = RULES[st.policy.selection.rule]
    done = over.copy()
    while draft.budget_left(st.policy) > 0:
        util = st.utilisation()
        hot = on & ~done & (util > limit)
        hot[list(draft.destinations)] = False
        if not hot.any():
            return
        h = int(np.flatnonzero(hot)[np.argmax(util[hot])])
        cands = np.array([v for v in st.vms_on(h) if not st.fixed[v]
                          and v not in draft.moved], np.int64)
        if not len(cands):
            done[h] = True
            continue
        vm = select(st, h, cands)
        trigger = f"balance: {st.snap.host_names[h]} CPU {util[h]:.0%} > mean + spread " \
                  f"{limit:.0%}"
        st.remove(vm)
        answer = place(st, Ask(vm, over | st.maintenance | (util > limit), max_after=limit,
                               ranking="balance"))
        if answer.host is None or not _narrows(st, h, answer.host, vm, rule.min_gain):
            st.add_back(vm, h)
            done[h] = True
            continue
        _commit(st, draft, vm, h, answer.host, trigger)
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
    """Empties the least-loaded hosts, one at a time, so that they can be switched off."""
    compat = st.policy.compat == "cloudsim"
    rule = st.policy.consolidation
    util = st.utilisation()
    tried = over.copy()
    if compat:  # CloudSim: hosts at 0 % when the round began count as switched off
        excluded = over | maintenance(st) | (st.start_util == 0)
        tried |= st.start_util == 0
    else:
        excluded = over | maintenance(st) | (st.host_count == 0) | ~st.snap.host_on
    emptied = 0
    while rule.max_hosts_per_round is None or emptied < rule.max_hosts_per_round:
        # CloudSim ranks by the utilisation at the round's start, whatever moved since.
        util = st.start_util if compat else st.utilisation()
        pick = ~tried & (st.host_count > 0) & (util < rule.underload_threshold)
        if compat:
            pick &= util > 0
        else:
            pick &= st.snap.host_on
            pick[list(draft.destinations)] = False  # just received VMs: not a candidate
        if not pick.any():
            return
        host = int(np.flatnonzero(pick)[np.argmin(util[pick])])
        tried[host] = True
        excluded[host] = True
        if not compat and not _headroom_without(st, host, excluded):
            continue
        trigger = (f"consolidation: {st.snap.host_names[host]} at "
                   f"{util[host]:.0%} CPU")
        first = len(draft.moves)
        if drain(st, draft, host, trigger, allow_empty=False, excluded=excluded):
            emptied += 1
            if compat:  # CloudSim: a destination of this drain is no longer under-loaded
                # (only of this drain: destinations of overload relief stay candidates,
                # CloudSim's exclusion bug)
                tried[[st.snap.host_index[m.dst] for m in draft.moves[first:]]] = True


def _headroom_without(st: State, host: int, excluded: B) -> bool:
    """After emptying `host`, the hosts left on must still hold the load plus the headroom."""
    on = st.snap.host_on & (st.host_count > 0)
    on[host] = False
    cap = float(st.snap.host_cpu[on].sum())
    return float(st.host_cur.sum()) <= (1.0 - st.policy.consolidation.headroom) * cap


def _trigger(st: State, host: int) -> str:
    rule = st.policy.overload
    util = float(st.utilisation()[host])
    name = st.snap.host_names[host]
    if rule.detector == "threshold" and util > rule.threshold:
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
    active_before = len(np.unique(st.snap.vm_host[st.snap.vm_host >= 0]))
    active_after = len(np.unique(st.vm_host[st.vm_host >= 0]))
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
    excluded = np.zeros(snapshot.n_hosts, np.bool_)
    hosts = np.array([dst])
    for reason, keep in FILTERS:
        if reason == "empty host":
            continue
        ok = keep(st, Ask(vm, excluded), hosts)
        if ok is not None and not ok[0]:
            return f"{move.dst} no longer fits {move.vm}: {reason}"
    return None
