"""A keep-together group in a drain, placed as one unit, compiled (`loops._place_seq`).

A drain moves every VM off a host; the members of a keep-together group on it must end up on
one host (`groups`). Placed one by one, the first member would choose the host best for
itself alone and the others follow it, so the drain failed whenever that host could not hold
the rest, even though another could hold the whole group. Here each host the first member
may go to is tried in its order (the same scan and score a single VM is placed by: cost,
then host index), with every member after it put there in turn, each through every filter
(`scan._scan`: it sees the members before it, so the group's demand adds up). The first host
that holds them all wins; a host that holds the first member but not the rest counts as
rejected by the keep-together filter in the first member's explain row. No host: no fit.
"""

from __future__ import annotations

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler.filters import PASS, TOGETHER
from ulm.scheduler.scan import _scan, _top
from ulm.scheduler.working import add, remove, restore_row, save_row


@numba.njit(cache=True)
def members(i: int, vms: np.ndarray, dst: np.ndarray, together: np.ndarray) -> np.ndarray:
    """Positions in `vms` of `vms[i]`'s keep-together group among the drain's VMs not yet
    placed (`dst` -3), `i` first: the VMs sharing a group with it, or with one of those."""
    k = len(vms)
    inside = np.zeros(k, np.bool_)
    inside[i] = True
    grown = True
    while grown:
        grown = False
        for j in range(i + 1, k):
            if inside[j] or dst[j] != -3:
                continue
            for m in range(k):
                if not inside[m]:
                    continue
                for g in range(together.shape[1]):
                    if together[vms[j], g] and together[vms[m], g]:
                        inside[j] = True
                        grown = True
                        break
                if inside[j]:
                    break
    out = np.zeros(k, np.int64)
    out[0] = i
    n = 1
    for j in range(i + 1, k):
        if inside[j]:
            out[n] = j
            n += 1
    return out[:n]


@numba.njit(cache=True)
def place_group(group: np.ndarray, vms: np.ndarray, src: int, p: np.ndarray,
                excluded: np.ndarray, V: tuple, H: tuple, S: tuple,  # type: ignore[type-arg]
                reason: np.ndarray, cost: np.ndarray, dst: np.ndarray, counts: np.ndarray,
                top_h: np.ndarray, top_c: np.ndarray, n_top: np.ndarray, saved: np.ndarray,
                saved_hist: np.ndarray, hosts: np.ndarray, n_off: int) -> bool:
    """Places the drain's VMs at positions `group` (the first already off `src`, the others
    still on it) together on the first host, in the first one's order, that holds them all:
    True, with their rows of `dst` and the outputs filled and each host's row saved before
    its change (`saved`, as `_place_seq` undoes a drain). False: the state as it was, the
    first one's `dst` -1 and `n_top` 0. Only `hosts` are scanned and tried (`loops.candidates`:
    the rest fail for every VM, and their rows of `cost` are not written)."""
    vm_host = S[8]
    lead = group[0]
    _scan(vms[lead], p, excluded, V, H, S, reason, cost, counts[lead], hosts, n_off)
    n_top[lead] = _top(cost, top_h[lead], top_c[lead], hosts)
    order = hosts[np.argsort(cost[hosts], kind="mergesort")]  # stable: ties, the lower index
    at_src = np.empty(saved.shape[1])
    at_src_hist = np.empty(saved_hist.shape[1])
    save_row(src, S, at_src, at_src_hist)
    m_reason = np.empty(len(reason), np.int8)
    m_cost = np.empty(len(cost))
    for r in range(len(order)):
        host = order[r]
        if cost[host] == np.inf:
            break
        save_row(host, S, saved[lead], saved_hist[lead])
        add(vms[lead], host, V, S, False)
        dst[lead] = host
        held = True
        for q in range(1, len(group)):
            j = group[q]
            remove(vms[j], V, S)
            _scan(vms[j], p, excluded, V, H, S, m_reason, m_cost, counts[j], hosts, n_off)
            n_top[j] = _top(m_cost, top_h[j], top_c[j], hosts)
            if m_reason[host] != PASS:
                held = False
                break
            save_row(host, S, saved[j], saved_hist[j])
            add(vms[j], host, V, S, False)
            dst[j] = host
        if held:
            if r > 0:  # the hosts before it held the first member, not the group
                counts[lead, TOGETHER] += r
            return True
        restore_row(host, S, saved[lead], saved_hist[lead])
        restore_row(src, S, at_src, at_src_hist)
        vm_host[vms[lead]] = -1
        for q in range(1, len(group)):
            vm_host[vms[group[q]]] = src
            dst[group[q]] = -3
    counts[lead, TOGETHER] += n_top_passed(cost, hosts)
    dst[lead] = -1
    n_top[lead] = 0
    return False


@numba.njit(cache=True)
def n_top_passed(cost: np.ndarray, hosts: np.ndarray) -> int:
    """How many of `hosts` passed every filter (a finite cost)."""
    n = 0
    for h in hosts:
        if cost[h] != np.inf:
            n += 1
    return n
