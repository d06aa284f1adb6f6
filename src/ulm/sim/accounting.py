"""How a host shares its CPU among its VMs at one instant (CloudSim's
`VmSchedulerTimeSharedOverSubscription` + `HostDynamicWorkload`), vectorised over all hosts.

* A VM's request is capped at one host core (a 1-vCPU VM cannot use two cores).
* If the capped requests exceed the host, every allocation is scaled by the same factor and
  floored (over-subscription: that is where SLA violation comes from).
* While a VM migrates, its source gives it 90 % of its (scaled) request and the destination
  accounts 10 % of it; the host's utilisation counts the source's share as if undegraded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)

NORMAL, OUT, IN = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Entries:
    """What runs where right now: one row per (VM, host) pair, in the hosts' VM-list order."""

    vm: I64
    host: I64
    kind: I64  # NORMAL, OUT (migrating away from this host) or IN (migrating to it)


@dataclass(frozen=True, slots=True)
class Share:
    """The result of sharing: per entry and per host (MIPS)."""

    alloc: F64  # per entry: MIPS allocated
    request: F64  # per entry: MIPS requested (uncapped)
    host_used: F64  # per host: allocated MIPS, a migrating-out VM's share divided by 0.9
    host_request: F64  # per host: requested MIPS of every VM on it, incoming ones included
    host_vms: I64  # per host: VMs on it, incoming ones included


def share(entries: Entries, request: F64, host_mips: F64, core_mips: F64) -> Share:
    """`request` is per VM (MIPS); the answer is CloudSim's allocation."""
    req = request[entries.vm]
    alloc, used, host_request, host_vms = _share(entries.host, entries.kind, req, host_mips,
                                                 core_mips)
    return Share(alloc=alloc, request=req, host_used=used, host_request=host_request,
                 host_vms=host_vms)


@numba.njit(cache=True)
def _share(h: I64, kind: I64, req: F64, host_mips: F64, core_mips: F64
           ) -> tuple[F64, F64, F64, I64]:
    """Compiled (the simulator shares ~2,300 times a day); sums run in entry order, as
    `bincount`'s do."""
    n_h, n = len(host_mips), len(h)
    capped = np.empty(n)
    total = np.zeros(n_h)
    for i in range(n):
        capped[i] = min(req[i], core_mips[h[i]])
        total[h[i]] += capped[i] * 0.1 if kind[i] == IN else capped[i]
    alloc = np.empty(n)
    used = np.zeros(n_h)
    host_request = np.zeros(n_h)
    host_vms = np.zeros(n_h, np.int64)
    for i in range(n):
        j, c = h[i], capped[i]
        if total[j] > host_mips[j]:  # over-subscribed: everyone scaled alike, then floored
            scale = host_mips[j] / total[j]
            if kind[i] == IN:
                a = np.floor(c * 0.1 * scale)
            elif kind[i] == OUT:
                a = np.floor(c * scale * 0.9)
            else:
                a = np.floor(c * scale)
        elif kind[i] == IN:
            a = c * 0.1
        elif kind[i] == OUT:
            a = c * 0.9
        else:
            a = c
        alloc[i] = a
        used[j] += a / 0.9 if kind[i] == OUT else a
        host_request[j] += req[i]
        host_vms[j] += 1
    return alloc, used, host_request, host_vms


def entries_of(vm_host: I64, alive: B, order: I64, in_vm: I64, in_dst: I64) -> Entries:
    """Entries for the live VMs (in `order`) plus the migrations in flight (`in_vm` -> `in_dst`).

    A VM in flight is OUT on its current host and IN on each destination.
    """
    vms = order[alive[order]]
    kind = np.zeros(len(vms), np.int64)
    if len(in_vm):
        moving = np.zeros(len(vm_host), np.bool_)
        moving[in_vm] = True
        kind[moving[vms]] = OUT
        return Entries(np.concatenate([vms, in_vm]), np.concatenate([vm_host[vms], in_dst]),
                       np.concatenate([kind, np.full(len(in_vm), IN, np.int64)]))
    return Entries(vms, vm_host[vms], kind)
