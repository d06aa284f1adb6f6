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
    n_h = len(host_mips)
    h, kind = entries.host, entries.kind
    req = request[entries.vm]
    capped = np.minimum(req, core_mips[h])
    incoming = kind == IN
    outgoing = kind == OUT
    eff = np.where(incoming, capped * 0.1, capped)
    total = np.bincount(h, weights=eff, minlength=n_h)
    over = total > host_mips
    alloc = capped.copy()
    if over.any():
        scale = np.where(over, host_mips / np.where(total > 0, total, 1.0), 1.0)[h]
        o = over[h]
        scaled = np.where(incoming, capped * 0.1 * scale,
                          np.where(outgoing, capped * scale * 0.9, capped * scale))
        alloc = np.where(o, np.floor(scaled), np.where(incoming, capped * 0.1,
                                                       np.where(outgoing, capped * 0.9, capped)))
    else:
        alloc = np.where(incoming, capped * 0.1, np.where(outgoing, capped * 0.9, capped))
    used = np.where(outgoing, alloc / 0.9, alloc)
    return Share(
        alloc=alloc,
        request=req,
        host_used=np.bincount(h, weights=used, minlength=n_h),
        host_request=np.bincount(h, weights=req, minlength=n_h),
        host_vms=np.bincount(h, minlength=n_h).astype(np.int64),
    )


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
