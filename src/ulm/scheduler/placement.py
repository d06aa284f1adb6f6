"""Where a VM may go (filters) and where it should go (ranking).

The whole placement policy on one screen: `FILTERS` lists the hard constraints cheapest first;
each rejects hosts with a human-readable reason, counted per VM for the explain table. The
ranking then picks one of the hosts left, by the policy's strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.scheduler.detectors import lr_verdict, overloaded
from ulm.scheduler.state import State, watts_at


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


#: Keeps the candidate hosts for which it is True; None = it keeps every host (the rule does
#: not apply to this VM or policy), which spares building an all-True array per VM.
Filter = Callable[[State, Ask, I64], B | None]


def _on(st: State, ask: Ask, hosts: I64) -> B | None:
    if st.policy.compat == "cloudsim":  # CloudSim's switched-off hosts are simply empty
        return None
    # The source (in maintenance when drained) is rejected as the source, not as "not on".
    return np.asarray(st.snap.host_on[hosts] | (hosts == st.snap.vm_host[ask.vm]))


def _not_excluded(st: State, ask: Ask, hosts: I64) -> B:
    return np.asarray(~ask.excluded[hosts] & (hosts != st.snap.vm_host[ask.vm]))


def _not_empty(st: State, ask: Ask, hosts: I64) -> B | None:
    return None if ask.allow_empty else np.asarray(st.host_count[hosts] > 0)


def _cores(st: State, ask: Ask, hosts: I64) -> B:
    if st.policy.compat == "cloudsim":  # a VM's one PE must fit in one host PE
        return np.asarray(st.snap.host_core_cpu[hosts] >= st.demand[ask.vm] - 1e-9)
    return np.asarray(st.snap.host_cores[hosts] >= st.snap.vm_vcpus[ask.vm])


def _cpu(st: State, ask: Ask, hosts: I64) -> B:
    cap = st.snap.host_cpu[hosts] * st.policy.placement.cpu_overcommit
    return np.asarray(st.host_cur[hosts] + st.demand[ask.vm] <= cap + 1e-9)


def _memory(st: State, ask: Ask, hosts: I64) -> B:
    cap = st.snap.host_mem[hosts] * st.policy.placement.mem_overcommit
    return np.asarray(st.host_mem[hosts] + st.mem[ask.vm] <= cap + 1e-9)


def _anti_affinity(st: State, ask: Ask, hosts: I64) -> B | None:
    groups = st.group[ask.vm]
    if not groups:
        return None
    taken = {int(st.vm_host[i]) for i in range(st.snap.n_vms)
             if i != ask.vm and st.vm_host[i] >= 0 and st.group[i] & groups}
    return np.array([int(h) not in taken for h in hosts], np.bool_)


def _slots(st: State, ask: Ask, hosts: I64) -> B | None:
    limit = st.policy.gates.max_concurrent_per_host
    if limit is None:
        return None
    if st.host_busy[st.snap.vm_host[ask.vm]] >= limit:  # the source has no slot left either
        return np.zeros(len(hosts), np.bool_)
    return st.host_busy[hosts] < limit


def _stays_healthy(st: State, ask: Ask, hosts: I64) -> B:
    """The move must not overload the destination (by the policy's own detector)."""
    cap_after = st.policy.placement.max_cpu_after
    after = (st.host_cur[hosts] + st.demand[ask.vm]) / st.snap.host_cpu[hosts]
    if cap_after is not None:
        return np.asarray(after <= cap_after + 1e-9)
    rule = st.policy.overload
    if rule.detector == "threshold":
        ok = after <= rule.threshold + 1e-9
    elif rule.detector == "none":
        ok = np.ones(len(hosts), np.bool_)
    elif len(st.host_lr):  # LR: the host's line plus the VM's line (see State.host_lr)
        cap = st.snap.host_cpu[hosts]
        vm = ask.vm
        horizon = np.maximum(st.horizon(hosts), st.intervals(st.snap.vm_mem_size[vm]))
        length = np.maximum(st.host_len[hosts], st.vm_len[vm])
        ok = ~lr_verdict(st.host_lr[hosts] + st.vm_lr[vm], horizon, length, after, cap, rule)
    else:
        ok = ~overloaded(st.load_with(hosts, ask.vm), rule)
    if st.policy.compat == "cloudsim":  # CloudSim skips the check for hosts at 0 %
        ok |= st.host_cur[hosts] == 0
    return np.asarray(ok)


def _stays_cool(st: State, ask: Ask, hosts: I64) -> B | None:
    if ask.max_after is None:
        return None
    after = (st.host_cur[hosts] + st.demand[ask.vm]) / st.snap.host_cpu[hosts]
    return np.asarray(after <= ask.max_after + 1e-9)


FILTERS: tuple[tuple[str, Filter], ...] = (
    ("host not on", _on),
    ("source or excluded", _not_excluded),
    ("empty host", _not_empty),
    ("too few cores", _cores),
    ("CPU full", _cpu),
    ("memory full", _memory),
    ("anti-affinity", _anti_affinity),
    ("migration slots full", _slots),
    ("would overload", _stays_healthy),
    ("would be too hot", _stays_cool),
)


def candidates(st: State, ask: Ask) -> tuple[I64, dict[str, int]]:
    hosts = np.arange(st.snap.n_hosts)
    rejections: dict[str, int] = {}
    for reason, keep in FILTERS:
        if not len(hosts):
            break
        ok = keep(st, ask, hosts)
        if ok is None:
            continue
        dropped = int(len(hosts) - ok.sum())
        if dropped:
            rejections[reason] = dropped
            hosts = hosts[ok]
    return hosts, rejections


# -- ranking: lower cost wins; ties go to the lowest host index ------------------------------

def _power_delta(st: State, ask: Ask, hosts: I64) -> F64:
    """PABFD: the smallest increase in power draw (Beloglazov & Buyya)."""
    cap = st.snap.host_cpu[hosts]
    after = np.minimum((st.host_cur[hosts] + st.demand[ask.vm]) / cap, 1.0)
    if st.policy.compat == "cloudsim":  # CloudSim: from the power at the round's start
        now = st.start_watts[hosts]
    else:
        now = watts_at(st.power_groups, hosts, np.minimum(st.host_cur[hosts] / cap, 1.0))
    cost = watts_at(st.power_groups, hosts, after) - now
    for curve, members in st.power_groups:
        if curve is None:  # no power model: best fit on CPU, the fullest host that fits
            rows = members[hosts]
            cost[rows] = -after[rows]
    return cost


def _first_fit(st: State, ask: Ask, hosts: I64) -> F64:
    return hosts.astype(np.float64)


def _balance(st: State, ask: Ask, hosts: I64) -> F64:
    """The least loaded host after the move (CPU or memory, whichever is fuller)."""
    cpu = (st.host_cur[hosts] + st.demand[ask.vm]) / st.snap.host_cpu[hosts]
    mem = (st.host_mem[hosts] + st.mem[ask.vm]) / np.maximum(st.snap.host_mem[hosts], 1e-9)
    return np.asarray(np.maximum(cpu, mem))


RANKINGS: dict[str, Callable[[State, Ask, I64], F64]] = {
    "pabfd": _power_delta, "first-fit": _first_fit, "balance": _balance,
}


def place(st: State, ask: Ask, top_n: int = 3) -> Answer:
    hosts, rejections = candidates(st, ask)
    if not len(hosts):
        return Answer(None, rejections)
    cost = RANKINGS[ask.ranking or st.policy.placement.strategy](st, ask, hosts)
    # `hosts` ascend, so the first minimum is the lowest host index among equals. Only the
    # best few are ordered, for the explain table: a full sort per VM costs too much.
    best = int(np.argmin(cost))
    few = set(np.argpartition(cost, top_n)[:top_n].tolist()) if len(cost) > top_n else set(
        range(len(cost)))
    few.add(best)
    top = sorted((float(cost[i]), int(hosts[i])) for i in few)[:top_n]
    return Answer(int(hosts[best]), rejections, [(h, c) for c, h in top])


def maintenance(st: State) -> B:
    return st.maintenance
