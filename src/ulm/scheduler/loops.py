"""The scheduler's sequential loops, compiled: relief's selection, placing a list of VMs one
after another (relief) or all or nothing (a drain); the consolidation loop that drains one host
after another is `emptying.py`.

Each step changes the working state the next one sees, so these cannot be vectorised; in Python
around the compiled scan they cost more than the scan itself. `core.py` calls them and turns
what they return (codes, indices) into moves, explain rows and problems.
"""

from __future__ import annotations

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler import nowhere
from ulm.scheduler.filters import EMPTY, EXCLUDED, MEMORY, N_REASONS, ON
from ulm.scheduler.grouped import members, place_group
from ulm.scheduler.limits import exceeds
from ulm.scheduler.scan import (
    CPU_NOW,
    DEMAND,
    MEM,
    P_COMPAT,
    P_MEM_THRESHOLD,
    P_THRESHOLD,
    P_TOLERANCE,
    RAM,
    _scan,
    _top,
)
from ulm.scheduler.working import add, by_host, host_over, remove, restore_row, save_row

# Selection rules the compiled relief loop knows (`selection.KEYED`): the VM with the
# smallest key leaves first; "cost" is ULM's rule (see `selection.cost`).
KEY_RULE, COST_RULE = 0, 1


@numba.njit(cache=True)
def select(hosts: np.ndarray, p: np.ndarray, V: tuple, S: tuple,  # type: ignore[type-arg]
           h_cpu: np.ndarray, h_mem_cap: np.ndarray, fixed: np.ndarray,
           moved: np.ndarray, rule: int, key: np.ndarray) -> tuple:  # type: ignore[type-arg]
    """Relief's selection (`core.relieve`), compiled: from each overloaded host, VMs leave
    one by one (taken off the working state) until the host is no longer overloaded, on CPU
    by the detector or on memory use. Returns the chosen VMs and their hosts, in order, and
    the hosts left overloaded with no movable VM."""
    vm_num, vm_host, h_mem_use = V[0], S[8], S[9]
    n_v = len(vm_host)
    chosen = np.zeros(n_v, np.int64)
    chosen_host = np.zeros(n_v, np.int64)
    stuck = np.zeros(len(hosts), np.int64)
    on = np.zeros(n_v, np.int64)
    n_chosen, n_stuck = 0, 0
    # Each host's VMs from an index built once (`by_host`), not a pass over every VM per host
    # (quadratic: 20,000 hosts x 200,000 VMs). Selection only takes VMs off hosts, so the VMs
    # on `h` now are those of the index still there, in the same (index) order the pass had.
    start, members = by_host(vm_host, len(S[0]))
    for h in hosts:
        k = 0
        for j in range(start[h], start[h + 1]):
            i = members[j]
            if vm_host[i] == h:
                on[k] = i
                k += 1
        limit, tol = p[P_MEM_THRESHOLD], p[P_TOLERANCE]
        # memory use only falls as VMs leave
        mem_can_be_over = exceeds(h_mem_use[h], h_mem_cap[h], limit, tol)
        while True:
            best, best_key = -1, 0.0
            if rule == COST_RULE:
                best = _cost_pick(on[:k], h, p, vm_num, S[0], h_cpu, fixed, moved)
            else:
                for j in range(k):
                    v = on[j]
                    if not fixed[v] and not moved[v] and (best < 0 or key[v] < best_key):
                        best, best_key = v, key[v]
            if best < 0:
                stuck[n_stuck] = h
                n_stuck += 1
                break
            remove(best, V, S)
            chosen[n_chosen], chosen_host[n_chosen] = best, h
            n_chosen += 1
            j = 0
            for m in range(k):  # the host's list without the VM that left
                if on[m] != best:
                    on[j] = on[m]
                    j += 1
            k = j
            if host_over(h, p, S, h_cpu):
                continue
            if not mem_can_be_over or not exceeds(h_mem_use[h], h_mem_cap[h], limit, tol):
                break
    return chosen[:n_chosen], chosen_host[:n_chosen], stuck[:n_stuck]


@numba.njit(cache=True)
def _cost_pick(on: np.ndarray, h: int, p: np.ndarray, vm_num: np.ndarray, h_cur: np.ndarray,
               h_cpu: np.ndarray, fixed: np.ndarray, moved: np.ndarray) -> int:
    """`selection.cost`: the least RAM among VMs that relieve the host alone (the host
    without it does not exceed the threshold), else the most CPU per MiB."""
    threshold, tol = p[P_THRESHOLD], p[P_TOLERANCE]
    best, best_mem = -1, 0.0
    for v in on:
        if not fixed[v] and not moved[v] and not exceeds(
                h_cur[h] - vm_num[v, CPU_NOW], h_cpu[h], threshold, tol) and (
                best < 0 or vm_num[v, RAM] < best_mem):
            best, best_mem = v, vm_num[v, RAM]
    if best >= 0:
        return best
    best_ratio = 0.0
    for v in on:
        if not fixed[v] and not moved[v]:
            ratio = vm_num[v, CPU_NOW] / max(vm_num[v, RAM], 1.0)
            if best < 0 or ratio > best_ratio:
                best, best_ratio = v, ratio
    return best


@numba.njit(cache=True)
def _place_seq(vms: np.ndarray, srcs: np.ndarray, p: np.ndarray, excluded: np.ndarray,
               V: tuple, H: tuple, S: tuple, budget: int, drain: bool,  # type: ignore[type-arg]
               dst: np.ndarray, counts: np.ndarray, top_h: np.ndarray, top_c: np.ndarray,
               n_top: np.ndarray, hits: np.ndarray) -> bool:
    """Places VMs in order into the given output rows. Relief (`drain` False): see
    `place_many`; a VM proven to fit nowhere takes its counts without a scan (`nowhere`;
    `hits[0]` counts those). Drain: the VMs are still on their host; at the first that finds
    no host every move is undone and the rest are not tried (False); slots are taken only
    when all fit."""
    h_busy, vm_host = S[4], S[8]
    n, k_vms = len(S[0]), len(vms)
    hosts, n_off = candidates(p, excluded, H)
    shortcut = not drain and nowhere.usable(p, V)
    candidate = np.zeros(n, np.bool_)
    candidate[hosts] = True
    rec, key = nowhere.record(n if shortcut else 0), np.zeros(nowhere.KEY)
    dst[:] = -3
    reason = np.empty(n, np.int8)
    cost = np.empty(n)
    left = budget
    # A drain that fails is undone exactly: the rows it touched are saved before each change
    # (row k_vms: the source) and put back, so that a failed attempt changes nothing at all.
    saved = np.empty((k_vms + 1 if drain else 0, 8))
    saved_hist = np.empty((k_vms + 1 if drain else 0, S[1].shape[1]))
    if drain and k_vms:
        save_row(srcs[0], S, saved[k_vms], saved_hist[k_vms])
    # A drain moves a keep-together group as one unit (`grouped`); without groups, one by one.
    grouping = drain and V[8].shape[1] > 0
    for i in range(k_vms):
        vm, src = vms[i], srcs[i]
        if grouping and dst[i] != -3:
            continue  # placed with its group's first member
        if left <= 0:
            add(vm, src, V, S, True)
            dst[i] = -2
            if shortcut and candidate[src]:
                nowhere.changed(src, rec, p, V, H, S)
            continue
        if drain:
            remove(vm, V, S)
        group = members(i, vms, dst, V[8]) if grouping else vms[:0]
        if len(group) > 1:
            placed = place_group(group, vms, src, p, excluded, V, H, S, reason, cost, dst,
                                 counts, top_h, top_c, n_top, saved, saved_hist, hosts, n_off)
            left -= len(group)
        else:
            keyed = shortcut and nowhere.key_of(vm, p, V, H, S, candidate, key)
            k = nowhere.slot_of(rec, key) if keyed else -1
            if k >= 0 and nowhere.counts_of(k, vm, rec, p, V, H, S, len(hosts), n_off,
                                            counts[i]):
                n_top[i] = 0  # fits nowhere: counted from the sorted thresholds
                hits[0] += 1
            else:
                _scan(vm, p, excluded, V, H, S, reason, cost, counts[i], hosts, n_off)
                n_top[i] = _top(cost, top_h[i], top_c[i], hosts)
                if keyed and k < 0 and n_top[i] == 0:  # the first of its key to fit nowhere:
                    nowhere.build(rec, key, hosts, p, V, H, S)  # a cluster with room never pays
            placed = n_top[i] > 0
        if not placed:
            dst[i] = -1
            if drain:  # all or nothing: undo the partial drain (later rows: groups placed)
                for j in range(k_vms - 1, -1, -1):
                    if j != i and dst[j] >= 0:
                        restore_row(dst[j], S, saved[j], saved_hist[j])
                        vm_host[vms[j]] = src
                restore_row(src, S, saved[k_vms], saved_hist[k_vms])
                vm_host[vm] = src
                return False
            add(vm, src, V, S, True)
            if shortcut and candidate[src]:  # a candidate host changed: the record follows
                nowhere.changed(src, rec, p, V, H, S)
            continue
        if len(group) > 1:
            continue
        dst[i] = top_h[i, 0]
        if drain:
            save_row(dst[i], S, saved[i], saved_hist[i])
        add(vm, dst[i], V, S, False)
        left -= 1
        if not drain:
            h_busy[src] += 1
            h_busy[dst[i]] += 1
            if shortcut:  # the destination changed (and a candidate source's slots)
                nowhere.changed(dst[i], rec, p, V, H, S)
                if candidate[src]:
                    nowhere.changed(src, rec, p, V, H, S)
    if drain:
        for i in range(k_vms):
            h_busy[srcs[i]] += 1
            h_busy[dst[i]] += 1
    return True


@numba.njit(cache=True)
def candidates(p: np.ndarray, excluded: np.ndarray, H: tuple  # type: ignore[type-arg]
               ) -> tuple[np.ndarray, int]:
    """The hosts a placement must scan, ascending: on (in CloudSim any) and not excluded;
    and how many are off. The rest fail ON or EXCLUDED for every VM (the source aside,
    `scan._scan`), and `excluded` holds still while VMs are placed one after another: relief
    excludes every overloaded host, often most of a big cluster, and scanning them for each
    of tens of thousands of VMs was most of its time."""
    h_on, compat = H[0], p[P_COMPAT] > 0
    hosts = np.zeros(len(h_on), np.int64)
    k, n_off = 0, 0
    for h in range(len(h_on)):
        if not compat and not h_on[h]:
            n_off += 1
        elif not excluded[h]:
            hosts[k] = h
            k += 1
    return hosts[:k], n_off


@numba.njit(cache=True)
def place_many(vms: np.ndarray, srcs: np.ndarray, p: np.ndarray, excluded: np.ndarray,
               V: tuple, H: tuple, S: tuple, budget: int,  # type: ignore[type-arg]
               top_n: int) -> tuple:  # type: ignore[type-arg]
    """Relief's placement: the VMs, taken off their hosts by selection, are placed in order,
    each seeing the moves before it; each move takes a migration slot on both ends at once. One
    that finds no host, or comes after the move budget ran out, goes back to its source.
    Returns per VM the destination (-1 no host, -2 budget used up), the rejections per
    reason, the top hosts and costs and how many. (A drain, all or nothing, is `drain`.)
    """
    k_vms = len(vms)
    dst = np.full(k_vms, -3, np.int64)
    counts = np.zeros((k_vms, N_REASONS), np.int64)
    top_h = np.zeros((k_vms, top_n), np.int64)
    top_c = np.zeros((k_vms, top_n))
    n_top = np.zeros(k_vms, np.int64)
    _place_seq(vms, srcs, p, excluded, V, H, S, budget, False, dst, counts, top_h, top_c, n_top,
               np.zeros(1, np.int64))
    return dst, counts, top_h, top_c, n_top


# Outcomes of a drain, and so of a consolidation candidate (`consolidate`'s events).
DRAINED, STUCK, NO_FIT, NO_BUDGET, NO_HEADROOM = range(5)


@numba.njit(cache=True)
def _drain(host: int, p: np.ndarray, excluded: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
           S: tuple, fixed: np.ndarray, budget: int, vms: np.ndarray,  # type: ignore[type-arg]
           dst: np.ndarray, counts: np.ndarray, top_h: np.ndarray, top_c: np.ndarray,
           n_top: np.ndarray, mem_fail: float, start: np.ndarray,
           members: np.ndarray) -> tuple[int, int, float]:
    """Every VM leaves `host`, hungriest first (ties by index), or none does: the outcome, how
    many VMs the host has, and what the drain learned for `mem_fail` (`_fits_nowhere`).
    `vms` and the other outputs get one row per VM, from row 0. The host's VMs are
    `members[start[host]:start[host + 1]]` (`working.by_host`), or found in `vm_host` if
    `start` is empty."""
    vm_num, vm_host = V[0], S[8]
    k, stuck = 0, False
    if len(start):
        for j in range(start[host], start[host + 1]):
            vms[k] = members[j]
            stuck = stuck or fixed[members[j]]
            k += 1
    else:
        for i in range(len(vm_host)):
            if vm_host[i] == host:
                vms[k] = i
                stuck = stuck or fixed[i]
                k += 1
    if stuck:
        return STUCK, k, np.inf
    if k > budget:
        return NO_BUDGET, k, np.inf
    for i in range(k):  # a VM this big fits nowhere: the drain would fail (`_fits_nowhere`)
        if vm_num[vms[i], MEM] >= mem_fail:
            return NO_FIT, k, np.inf
    for i in range(1, k):  # insertion sort: a host has a handful of VMs
        v, j = vms[i], i
        while j > 0 and vm_num[vms[j - 1], DEMAND] < vm_num[v, DEMAND]:
            vms[j] = vms[j - 1]
            j -= 1
        vms[j] = v
    if not _place_seq(vms[:k], np.full(k, host, np.int64), p, excluded, V, H, S, k, True,
                      dst[:k], counts[:k], top_h[:k], top_c[:k], n_top[:k],
                      np.zeros(1, np.int64)):
        return NO_FIT, k, _fits_nowhere(vms[0], dst[0], counts[0], vm_num)
    return DRAINED, k, np.inf


@numba.njit(cache=True)
def _fits_nowhere(vm: int, dst: int, counts: np.ndarray, vm_num: np.ndarray) -> float:
    """The memory of a VM that, first of its drain, found no host only because hosts were
    off, excluded, empty or short of memory (else inf). While the working state stays as it
    is (failed drains are undone exactly) and `excluded` only grows, every VM with at least
    this much memory finds no host either, in this state or with more VMs on the hosts (a
    drain's earlier moves): those filters do not depend on the VM but for memory, and
    memory's `exceeds` only grows with the VM's size. So a consolidation round that tries
    hundreds of hosts of a cluster short of memory (honest mode: RAM reserved) knows at once
    that their drains fail; the outcome is the one the drains would have had."""
    if dst != -1:
        return np.inf
    for r in range(len(counts)):
        if counts[r] > 0 and r != ON and r != EXCLUDED and r != EMPTY and r != MEMORY:
            return np.inf
    return float(vm_num[vm, MEM])


@numba.njit(cache=True)
def drain(host: int, p: np.ndarray, excluded: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
          S: tuple, fixed: np.ndarray, budget: int, top_n: int) -> tuple:  # type: ignore[type-arg]
    """`_drain` of one host (`core.drain`): the outcome, then per VM of the host its index,
    destination, rejections, top hosts and costs and how many."""
    n_v = len(S[8])
    vms = np.zeros(n_v, np.int64)
    dst = np.full(n_v, -3, np.int64)
    counts = np.zeros((n_v, N_REASONS), np.int64)
    top_h = np.zeros((n_v, top_n), np.int64)
    top_c = np.zeros((n_v, top_n))
    n_top = np.zeros(n_v, np.int64)
    what, k, _ = _drain(host, p, excluded, V, H, S, fixed, budget, vms, dst, counts, top_h,
                        top_c, n_top, np.inf, np.zeros(0, np.int64), np.zeros(0, np.int64))
    return what, vms[:k], dst[:k], counts[:k], top_h[:k], top_c[:k], n_top[:k]
