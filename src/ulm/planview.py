"""What the Plan page shows of a plan: the load each move leaves on both its hosts, how long
it should take, what makes it risky, and the plan's state. Pure: the I/O shell hands in the
plan's stored body, its outcomes and what the store knows of past moves.

The load comes from the plan's own snapshot: when the daemon stores a plan it keeps, with it,
the figures of the hosts and VMs its moves touch (`loads_of`, in the plan's body as
`loads`); the rows replay the moves in order over them, so "before" is what the host carries
before that move (earlier moves of the plan included) and "after" what it carries once it
landed. A plan stored before this existed has no `loads`: its rows show no load.

Paused and crashed VMs are never moved (`VmState`), but they still concern a plan twice. A
destination that holds one (`dst_paused`) shows a load without it: its CPU demand is idle
while paused, and comes back when someone resumes it, so the flag says what the destination
carries then (its CPU window's peak added to "after"). And a VM the plan moves may have been
paused (or crashed, or stopped) since the plan was made (`vm_paused`, `vm_not_running`): the
apply would skip it (`Cause.PAUSED`); that is asked of the VM's state now, for a plan that can
still be approved.
"""

from __future__ import annotations

import dataclasses
import enum
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ulm.model import Plan, VmState
from ulm.policy import Policy
from ulm.snapshot import Snapshot

#: a destination that ends above this share of its overload threshold is flagged
NEAR_THRESHOLD = 0.9
#: a move whose estimate takes more than this share of the executor's deadline is flagged
DEADLINE_SHARE = 0.5
RECENT_MOVE_S = 3600.0  # a VM moved within the hour
RECENT_FAILURE_S = 86400.0  # a migration to the destination failed within a day
#: bandwidth assumed when neither the config nor a past move says one (MiB/s, ~1 Gbit/s)
DEFAULT_MIB_S = 110.0


class Risk(enum.StrEnum):
    NEAR_THRESHOLD = "near_threshold"  # the destination ends near its overload threshold
    LONG_MOVE = "long_move"  # large memory against the migration deadline
    MOVED_RECENTLY = "moved_recently"
    DST_FAILED = "dst_failed"  # a migration to that host failed recently
    DST_PAUSED = "dst_paused"  # the destination holds paused/crashed VMs (not in its load)
    VM_PAUSED = "vm_paused"  # the VM is paused now: the apply skips it
    VM_NOT_RUNNING = "vm_not_running"  # crashed or stopped now: the apply skips it


class PlanState(enum.StrEnum):
    READY = "READY"  # proposed, the newest: it may be approved
    APPLYING = "APPLYING"  # its actions are being carried out
    DONE = "DONE"
    FAILED = "FAILED"  # an action of it failed
    SUPERSEDED = "SUPERSEDED"  # a newer plan replaced it before it was applied
    REJECTED = "REJECTED"  # an operator said no


@dataclass(frozen=True, slots=True)
class Flag:
    kind: Risk
    value: float = 0.0  # the figure behind it (a fraction, seconds, seconds ago)
    limit: float = 0.0  # what it is compared with


@dataclass(frozen=True, slots=True)
class Load:
    cpu: float  # fraction of the host's CPU
    mem: float  # fraction of its memory


@dataclass(frozen=True, slots=True)
class Row:
    """One action of the plan, as the page shows it."""

    seq: int
    kind: str
    vm: str = ""
    src: str = ""
    dst: str = ""
    host: str = ""
    reason: str = ""
    mem_mib: float = 0.0
    src_before: Load | None = None
    src_after: Load | None = None
    dst_before: Load | None = None
    dst_after: Load | None = None
    estimate_s: float = 0.0
    estimate_basis: str = ""  # measured | bandwidth | assumed
    risks: tuple[Flag, ...] = field(default_factory=tuple)


def loads_of(snap: Snapshot, plan: Plan, policy: Policy) -> dict[str, Any]:
    """The plan's snapshot, cut to what its moves touch: each host's capacity and what its
    VMs use (CPU: current demand, memory: their size), each moved VM's figures, and the
    thresholds the page compares with. Goes into the stored plan's body."""
    moves = plan.moves
    names = {m.src for m in moves} | {m.dst for m in moves}
    hosts: dict[str, dict[str, float]] = {}
    for h in names:
        i = snap.host_index.get(h)
        if i is None:
            continue
        on = snap.vm_host == i
        hosts[h] = {"cpu_cap": float(snap.host_cpu[i]), "mem_cap": float(snap.host_mem[i]),
                    "cpu": float(snap.vm_cpu[on].sum()), "mem": float(snap.vm_mem_size[on].sum())}
        idle = [v for v in np.flatnonzero(on).tolist() if snap.vm_state[v] is not VmState.RUNNING]
        if idle:  # what they take back when resumed: their CPU window's peak (as the gates)
            hist = snap.vm_history[idle]
            peak = np.where(np.isnan(hist), 0.0, hist).max(axis=1, initial=0.0)
            hosts[h] |= {"paused": float(len(idle)),
                         "paused_cpu": float(np.maximum(peak - snap.vm_cpu[idle], 0.0).sum())}
    vms: dict[str, dict[str, float | None]] = {}
    for m in moves:
        v = snap.vm_index.get(m.vm)
        if v is None:
            continue
        last = float(snap.vm_last_moved[v]) if len(snap.vm_last_moved) else float("nan")
        vms[m.vm] = {"cpu": float(snap.vm_cpu[v]), "mem": float(snap.vm_mem_size[v]),
                     "last_moved_at": None if last != last or last <= 0 else last}
    return {"taken_at": snap.taken_at, "hosts": hosts, "vms": vms,
            "cpu_threshold": float(policy.overload.threshold),
            "mem_threshold": float(policy.overload.memory_threshold)}


def with_loads(snap: Snapshot, plan: Plan, policy: Policy) -> Plan:
    """The plan as the daemon stores it: with `loads_of` its snapshot."""
    return dataclasses.replace(plan, loads=loads_of(snap, plan, policy))


def rate_mib_s(bandwidth_mib_s: float, past: Iterable[tuple[float, float]]) -> tuple[float, str]:
    """MiB a second a migration moves: the median of the past moves the store measured
    (`past`: (MiB, seconds) of moves that ended well), else the executor's bandwidth cap,
    else `DEFAULT_MIB_S`; and which of the three it is."""
    rates = [mib / s for mib, s in past if mib > 0 and s > 0]
    if rates:
        return float(statistics.median(rates)), "measured"
    if bandwidth_mib_s > 0:
        return bandwidth_mib_s, "bandwidth"
    return DEFAULT_MIB_S, "assumed"


def estimate_s(mem_mib: float, rate: float) -> float:
    """Seconds a live migration of `mem_mib` takes at `rate` MiB/s: one pass over the memory
    (pages written meanwhile are sent again: a lower bound for a busy VM)."""
    return mem_mib / rate if rate > 0 else 0.0


def _load(h: Mapping[str, float]) -> Load:
    return Load(h["cpu"] / h["cpu_cap"] if h["cpu_cap"] else 0.0,
                h["mem"] / h["mem_cap"] if h["mem_cap"] else 0.0)


def rows(body: Mapping[str, Any], bandwidth_mib_s: float, deadline_s: float,
         past: Sequence[tuple[float, float]] = (),
         failed_to: Mapping[str, float] | None = None,
         vm_states: Mapping[str, VmState] | None = None) -> list[Row]:
    """The plan's actions in order with their load, estimate and risks. `failed_to`: the
    newest failed migration towards each host (epoch seconds); `vm_states`: each VM's state
    now (given for a plan that may still be approved; a VM not in it is not judged)."""
    loads = body.get("loads") or {}
    hosts = {h: dict(v) for h, v in (loads.get("hosts") or {}).items()}
    vms = loads.get("vms") or {}
    at = float(loads.get("taken_at") or body.get("created_at") or 0.0)
    cpu_t = float(loads.get("cpu_threshold") or 0.0)
    rate, basis = rate_mib_s(bandwidth_mib_s, past)
    failed = failed_to or {}
    out = []
    for seq, a in enumerate(body["actions"], 1):
        if a["kind"] != "move":
            out.append(Row(seq, a["kind"], host=a.get("host", ""), reason=a.get("reason", "")))
            continue
        vm = vms.get(a["vm"]) or {}
        mem = float(a.get("mem_mib") or vm.get("mem") or 0.0)
        row = Row(seq, "move", a["vm"], a["src"], a["dst"], reason=a.get("reason", ""),
                  mem_mib=mem, estimate_s=estimate_s(mem, rate), estimate_basis=basis)
        src, dst = hosts.get(a["src"]), hosts.get(a["dst"])
        risks: list[Flag] = []
        if src is not None and dst is not None and vm:
            before = (_load(src), _load(dst))
            for h, sign in ((src, -1.0), (dst, 1.0)):
                h["cpu"] += sign * float(vm["cpu"])
                h["mem"] += sign * float(vm["mem"])
            row = _with(row, before, (_load(src), _load(dst)))
            if cpu_t and row.dst_after is not None \
                    and row.dst_after.cpu > NEAR_THRESHOLD * cpu_t:
                risks.append(Flag(Risk.NEAR_THRESHOLD, row.dst_after.cpu, cpu_t))
            if dst.get("paused") and row.dst_after is not None and dst["cpu_cap"]:
                back = row.dst_after.cpu + float(dst.get("paused_cpu", 0.0)) / dst["cpu_cap"]
                risks.append(Flag(Risk.DST_PAUSED, back, cpu_t))
        now = (vm_states or {}).get(a["vm"])
        if now is VmState.PAUSED:
            risks.append(Flag(Risk.VM_PAUSED))
        elif now is not None and now is not VmState.RUNNING:
            risks.append(Flag(Risk.VM_NOT_RUNNING))
        if deadline_s > 0 and row.estimate_s > DEADLINE_SHARE * deadline_s:
            risks.append(Flag(Risk.LONG_MOVE, row.estimate_s, deadline_s))
        last = vm.get("last_moved_at")
        if last is not None and at - float(last) < RECENT_MOVE_S:
            risks.append(Flag(Risk.MOVED_RECENTLY, at - float(last), RECENT_MOVE_S))
        when = failed.get(a["dst"])
        if when is not None and at - when < RECENT_FAILURE_S:
            risks.append(Flag(Risk.DST_FAILED, at - when, RECENT_FAILURE_S))
        out.append(dataclasses.replace(row, risks=tuple(risks)))
    return out


def _with(r: Row, before: tuple[Load, Load], after: tuple[Load, Load]) -> Row:
    return dataclasses.replace(r, src_before=before[0], dst_before=before[1],
                               src_after=after[0], dst_after=after[1])


def state(status: str, open_entries: int, newer: bool) -> PlanState:
    """The plan's state from its stored status (what the executor and the API wrote), its
    journal entries still open, and whether a newer plan exists: one rule for the API's
    plans routes and the page."""
    if open_entries:
        return PlanState.APPLYING
    if status == "applied":
        return PlanState.DONE
    if status == "failed":
        return PlanState.FAILED
    if status == "rejected":
        return PlanState.REJECTED
    if status == "running":  # an enforced plan between its save and its end
        return PlanState.APPLYING
    if status == "superseded" or newer:
        return PlanState.SUPERSEDED
    return PlanState.READY
