"""Scheduled downtime: what a booking needs next, decided from a snapshot. Pure.

A booking moves through `booked` → `draining` (lead time before its start: the host is closed
to new VMs and emptied live, all-or-nothing) → `down` (empty; powered off if asked) → `done`
(after its end: powered on if ULM powered it off, health-checked, reopened). A drain that does
not fit is `blocked`: said at booking time, again as the window nears, with the shortfall — and
nothing is powered off. A host that still runs a VM is never powered off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ulm.budget import day_budget
from ulm.model import Action, HostState, Move, PowerOff, PowerOn
from ulm.policy import Policy
from ulm.problems import Problem, ProblemKind
from ulm.scheduler.drain import DrainReport, check_drain
from ulm.snapshot import Snapshot

LEAD_FACTOR = 2.0  # migrations vary; start early rather than late
LEAD_MARGIN_S = 300.0


@dataclass(frozen=True, slots=True)
class BookingView:
    id: int
    host: str
    start: float
    end: float
    power_off: bool
    status: str  # booked | blocked | draining | down | done | cancelled


@dataclass(frozen=True, slots=True)
class Step:
    status: str
    detail: str
    actions: tuple[Action, ...] = ()
    late: bool = False  # the window has started and VMs are still on the host: a warning


def lead_time(report: DrainReport) -> float:
    return report.lead_time_s * LEAD_FACTOR + LEAD_MARGIN_S


def step(b: BookingView, snap: Snapshot, policy: Policy, now: float,
         mib_per_s: float) -> Step:
    """The booking's next status and the power actions it needs now."""
    if b.host not in snap.host_index:
        return Step(b.status, f"{b.host} is not in the inventory")
    i = snap.host_index[b.host]
    vms = [snap.vm_names[k] for k in range(snap.n_vms) if snap.vm_host[k] == i]
    if b.status in ("booked", "blocked"):
        if now >= b.end:
            return Step("done", "window passed without a drain")
        report = check_drain(snap, policy, b.host, now, mib_per_s, at=max(b.start, now))
        if not report.fits:
            return Step("blocked", report.summary() + "; nothing will be powered off")
        if now >= b.start - lead_time(report):
            return Step("draining", f"draining {len(vms)} VM(s), about "
                        f"{report.lead_time_s:.0f} s of migrations")
        return Step("booked", report.summary())
    if b.status == "draining":
        if vms:
            late = now >= b.start
            return Step("draining", (f"window started, {len(vms)} VM(s) still on {b.host}: "
                                     f"{', '.join(vms[:5])}") if late else
                        f"{len(vms)} VM(s) left on {b.host}", late=late)
        if b.power_off and snap.host_state[i] is not HostState.OFF:
            return Step("down", f"{b.host} is empty: powering off",
                        (PowerOff(b.host, f"maintenance #{b.id}"),))
        return Step("down", f"{b.host} is empty and closed")
    if b.status == "down" and now >= b.end:
        if b.power_off:
            return Step("returning", f"window over: powering {b.host} on",
                        (PowerOn(b.host, f"end of maintenance #{b.id}"),))
        return Step("returning", f"window over: reopening {b.host}")
    if b.status == "returning":
        if snap.host_state[i] is HostState.ON:
            return Step("done", f"{b.host} answers again and is open for VMs")
        return Step("returning", f"waiting for {b.host} to answer (health check)")
    return Step(b.status, "")


def return_home(snap: Snapshot, policy: Policy, host: str, vms: tuple[str, ...],
                now: float) -> tuple[list[Move], list[Problem]]:
    """Moves that bring a reopened host's former VMs back, as far as every filter and the move
    budget allow; the rest stay where they are, reported (an admin asked for it, so the
    cool-down does not apply, but capacity and constraints do)."""
    from ulm.scheduler.placement import Ask, verdict
    from ulm.scheduler.state import State

    st = State.of(snap, policy, now)
    dst = snap.host_index[host]
    budget = policy.gates.max_moves_per_round
    day = day_budget(policy, policy.effective(now)[0], snap.taken_at, snap.migrations_today,
                     now)
    moves: list[Move] = []
    problems: list[Problem] = []
    for name in vms:
        vm = snap.vm_index.get(name)
        if vm is None or st.vm_host[vm] == dst or st.vm_host[vm] < 0:
            continue
        if day.left is not None and len(moves) >= day.left:
            problems.append(Problem(ProblemKind.DAY_BUDGET, vm=name, limit=day.limit or 0,
                                    used=day.used + len(moves), why=f"{name}'s return home"))
            continue
        if budget is not None and len(moves) >= budget:
            problems.append(Problem(ProblemKind.HOME_BUDGET, vm=name, limit=budget))
            continue
        src = int(st.vm_host[vm])
        st.remove(vm)
        rejected = verdict(st, Ask(vm, np.zeros(snap.n_hosts, np.bool_)), dst)
        if rejected is not None:
            st.add_back(vm, src)
            problems.append(Problem(ProblemKind.HOME_REJECTED, host=snap.host_names[src],
                                    vm=name, why=rejected))
            continue
        st.add(vm, dst)
        moves.append(Move(name, snap.host_names[src], host, f"return home to {host}",
                          float(snap.vm_mem_size[vm])))
    return moves, problems
