"""`schedule(snapshot, policy, now) -> Plan`: the whole decision, as a pure function.

The round, top to bottom: evacuate hosts in maintenance, relieve overloaded hosts (detector ->
selection -> placement, `relieve`), balance and consolidate under-loaded hosts (all-or-nothing,
`packing`), then decide power. Every VM considered gets a row in the explain table; whatever
cannot be done is a problem (`ulm.problems`: data, rendered at the edge). The day's migration
budget (`ulm.budget`) caps every move but a maintenance drain's, which counts against it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from ulm.budget import day_budget
from ulm.calendar import Period
from ulm.model import Action, Decision, Efficacy, Move, Plan, VmState
from ulm.policy import Policy
from ulm.problems import Problem, ProblemKind
from ulm.scheduler import power, priority
from ulm.scheduler.draft import Draft
from ulm.scheduler.gates import PRIORITIES
from ulm.scheduler.packing import balance, consolidate, evacuate
from ulm.scheduler.placement import Ask, verdict
from ulm.scheduler.quiet import collector_paused
from ulm.scheduler.relieve import overloaded_hosts, relieve
from ulm.scheduler.repair import held_alone, repair
from ulm.scheduler.state import State
from ulm.snapshot import Snapshot


def schedule(snapshot: Snapshot, policy: Policy, now: float, explain: bool = True) -> Plan:
    """The plan for this snapshot. `explain=False` leaves out the explain rows of VMs that
    move (what was rejected, the best scores): the same plan, for the simulator, which makes
    ~31,000 moves a simulated day and reads none of them."""
    with collector_paused():  # `quiet`: a big plan's rows are not garbage
        return _schedule(snapshot, policy, now, explain)


def _schedule(snapshot: Snapshot, policy: Policy, now: float, explain: bool) -> Plan:
    pol, period, notes = _in_force(policy, now)
    st = State.of(snapshot, pol, now)
    draft = Draft(problems=notes, explain=explain, day=day_budget(
        policy, pol, snapshot.taken_at, snapshot.migrations_today, now))
    before = st.utilisation().copy()
    over = overloaded_hosts(st)
    n_over_before = int(over.sum())
    if snapshot.host_stale.any():
        _stale_hosts(st, draft)
    _not_running(st, draft)
    if st.prio is not None:
        priority.report(st, draft.problems, draft.decisions)
    evacuate(st, draft, over)
    repair(st, draft)
    normal = pol.mode == "normal"  # repair-only: nothing but the repairs (and drains)
    if normal:
        relieve(st, over, draft)
        if draft.explain and st.together.shape[1]:
            held_alone(st, over, draft)
    if normal and pol.balance.enabled:
        balance(st, over, draft)
    if normal and pol.consolidation.enabled:
        consolidate(st, over, draft)
    wake = (power.wake_for_office(st) if period is Period.PRE_OFFICE
            else power.wake(st, draft.problems))
    actions: list[Action] = [*wake, *draft.moves, *(power.sleep(st) if normal else ())]
    return Plan(
        snapshot_id=snapshot.id,
        policy_digest=policy.digest,
        created_at=now,
        actions=tuple(actions),
        decisions=tuple(_ranked(st, draft.decisions)),
        problems=tuple(str(p) for p in draft.problems),
        efficacy=_efficacy(st, before, n_over_before, draft),
        issues=tuple(draft.problems),
    )


def _in_force(policy: Policy, now: float) -> tuple[Policy, Period, list[Problem]]:
    """The calendar's verdict: which profile applies, and what a freeze or the morning forbid.

    Before office hours nothing is packed (hosts are being woken); during a change freeze
    nothing is packed or powered off — relieving overload and draining for maintenance go on,
    because they protect the service.
    """
    pol, period, freeze = policy.effective(now)
    notes: list[Problem] = []
    if freeze is not None or period is Period.PRE_OFFICE:
        off = pol.consolidation.model_copy(update={"enabled": False})
        pol = pol.model_copy(update={"consolidation": off})
        if freeze is not None:
            notes.append(Problem(ProblemKind.FREEZE, until=freeze.end.isoformat(),
                                 why=freeze.reason or ""))
    return pol, period, notes


def _ranked(st: State, rows: list[Decision]) -> list[Decision]:
    """With VM priorities (`ulm.priority`), each VM's explain row says its rank."""
    if st.prio is None:
        return rows
    rank, index = st.prio, st.snap.vm_index
    return [replace(d, outcome=f"{d.outcome} (priority {PRIORITIES[rank[index[d.vm]]]})")
            if d.vm in index else d for d in rows]


def _stale_hosts(st: State, draft: Draft) -> None:
    """One explain row per ON host whose own figures went stale: why nothing moves off or
    onto it (its load is unknown, not its last figure)."""
    snap = st.snap
    for h in np.flatnonzero(snap.host_stale & snap.host_on).tolist():
        if snap.host_quarantine[h]:  # disbelieved figures (`ulm.collect.guard`), not old ones
            draft.decisions.append(Decision(
                "", snap.host_names[h], f"quarantined: {snap.host_quarantine[h]}",
                "kept: host figures disbelieved; neither source nor destination"))
            continue
        last = snap.host_measured[h][~np.isnan(snap.host_measured[h])]
        figure = f" (last figure {last[-1]:.0%})" if len(last) else ""
        draft.decisions.append(Decision(
            "", snap.host_names[h], f"stale host metrics{figure}",
            "kept: host figures stale; neither source nor destination"))


def _not_running(st: State, draft: Draft) -> None:
    """One explain row per paused or crashed VM: it stays (`State`'s fixed reason), whatever
    its host needs."""
    snap = st.snap
    if snap.vm_state.count(VmState.RUNNING) == snap.n_vms:
        return
    for i, state in enumerate(snap.vm_state):
        h = int(snap.vm_host[i])
        if state is not VmState.RUNNING and h >= 0:
            draft.decisions.append(Decision(snap.vm_names[i], snap.host_names[h],
                                            f"VM is {state.value}", f"kept: VM is {state.value}"))


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
    for name in (move.src, move.dst):  # disbelieved figures: nothing decided to or from it
        h = snapshot.host_index.get(name)
        if h is not None and snapshot.host_quarantine[h]:
            return f"{name} is quarantined: {snapshot.host_quarantine[h]}"
    st = State.of(snapshot, policy, snapshot.taken_at)
    st.remove(vm)
    # The source excluded: keep-together mates still there leave with the VM (a drain's or a
    # repair's later moves; `groups`), they do not hold it back.
    src = np.zeros(snapshot.n_hosts, np.bool_)
    if snapshot.vm_host[vm] >= 0:
        src[snapshot.vm_host[vm]] = True
    why = verdict(st, Ask(vm, src), dst)
    return None if why is None else f"{move.dst} no longer fits {move.vm}: {why}"
