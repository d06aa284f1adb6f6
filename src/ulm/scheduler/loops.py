"""The scheduler's sequential loops, compiled: relief's selection, placing a list of VMs one
after another (relief) or all or nothing (a drain), and the consolidation loop.

Each step changes the working state the next one sees, so these cannot be vectorised; in Python
around the compiled scan they cost more than the scan itself. `core.py` calls them and turns
what they return (codes, indices) into moves, explain rows and problems.
"""

from __future__ import annotations

import math

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler.filters import EMPTY, EXCLUDED, MEMORY, N_REASONS, ON
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
from ulm.scheduler.working import add, host_over, remove, restore_row, save_row

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
    for h in hosts:
        k = 0
        for i in range(n_v):
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
               n_top: np.ndarray) -> bool:
    """Places VMs in order into the given output rows. Relief (`drain` False): see
    `place_many`. Drain: the VMs are still on their host; at the first that finds no host
    every move is undone and the rest are not tried (False); slots are taken only when all
    fit."""
    h_busy, vm_host = S[4], S[8]
    n, k_vms = len(S[0]), len(vms)
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
    for i in range(k_vms):
        vm, src = vms[i], srcs[i]
        if left <= 0:
            add(vm, src, V, S, True)
            dst[i] = -2
            continue
        if drain:
            remove(vm, V, S)
        _scan(vm, p, excluded, V, H, S, reason, cost, counts[i])
        n_top[i] = _top(cost, top_h[i], top_c[i])
        if n_top[i] == 0:
            dst[i] = -1
            if drain:  # all or nothing: undo the partial drain
                for j in range(i - 1, -1, -1):
                    restore_row(dst[j], S, saved[j], saved_hist[j])
                    vm_host[vms[j]] = src
                restore_row(src, S, saved[k_vms], saved_hist[k_vms])
                vm_host[vm] = src
                return False
            add(vm, src, V, S, True)
            continue
        dst[i] = top_h[i, 0]
        if drain:
            save_row(dst[i], S, saved[i], saved_hist[i])
        add(vm, dst[i], V, S, False)
        left -= 1
        if not drain:
            h_busy[src] += 1
            h_busy[dst[i]] += 1
    if drain:
        for i in range(k_vms):
            h_busy[srcs[i]] += 1
            h_busy[dst[i]] += 1
    return True


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
    _place_seq(vms, srcs, p, excluded, V, H, S, budget, False, dst, counts, top_h, top_c, n_top)
    return dst, counts, top_h, top_c, n_top


# Consolidation's order of candidates (`[consolidation] order`), outside compat.
BY_UTILISATION, BY_FEWEST_VMS, BY_CHEAPEST = range(3)
ORDERS = {"utilisation": BY_UTILISATION, "fewest-vms": BY_FEWEST_VMS, "cheapest": BY_CHEAPEST}

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
    `members[start[host]:start[host + 1]]` (`_by_host`), or found in `vm_host` if `start`
    is empty."""
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
                      dst[:k], counts[:k], top_h[:k], top_c[:k], n_top[:k]):
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


@numba.njit(cache=True)
def consolidate(p: np.ndarray, V: tuple, H: tuple, S: tuple,  # type: ignore[type-arg]
                ranked: np.ndarray, tried: np.ndarray, excluded: np.ndarray,
                blocked: np.ndarray, fixed: np.ndarray, underload: float, max_hosts: int,
                budget: int, headroom: float, top_n: int,
                rank_by: int) -> tuple:  # type: ignore[type-arg]
    """Empties the least-loaded hosts one at a time, each all or nothing (`core.consolidate`).

    Compat (CloudSim): candidates in the fixed order `ranked` (by utilisation at the round's
    start); a drain's destinations are no longer candidates. Otherwise: the host with the
    lowest utilisation now, among hosts that are on and not `blocked` (destinations of this
    round), and only if the hosts left on keep `headroom` free. `tried`, `excluded` change
    in place. `rank_by` (`ORDERS`) ranks the candidates outside compat: the lowest
    utilisation; or the fewest VMs (a host freed for the fewest migrations), then the cheapest
    drain, then the lowest utilisation; or the cheapest drain (sum over its VMs of CPU now x
    RAM, what the drain adds to the migrations' SLA cost), then the fewest VMs, then the
    lowest utilisation. Returns the
    events (host, outcome, first move, utilisation when picked) and the moves (VM,
    destination, rejections, top hosts and costs, how many), in order.
    """
    compat = p[P_COMPAT] > 0
    h_on, h_num = H[0], H[1]
    h_cur, h_count, vm_host = S[0], S[3], S[8]
    n_h, n_v = len(h_cur), len(vm_host)
    ev_host = np.zeros(n_h, np.int64)
    ev_what = np.zeros(n_h, np.int64)
    ev_first = np.zeros(n_h, np.int64)
    ev_util = np.zeros(n_h)
    mv_vm = np.zeros(n_v, np.int64)
    mv_dst = np.zeros(n_v, np.int64)
    counts = np.zeros((n_v, N_REASONS), np.int64)
    top_h = np.zeros((n_v, top_n), np.int64)
    top_c = np.zeros((n_v, top_n))
    n_top = np.zeros(n_v, np.int64)
    n_ev, n_mv, emptied, next_rank = 0, 0, 0, 0
    # Between two drains that succeed the working state does not change (a failed drain is
    # undone exactly), so what depends only on it is computed once per such stretch: the
    # candidates in order of utilisation, the load and the capacity of the hosts left on,
    # and `mem_fail` (`_fits_nowhere`). Hundreds of hosts are tried a round when most
    # drains fail (honest mode, RAM reserved); the loop did all of it again for each.
    changed = True
    mem_fail = np.inf
    order = np.zeros(n_h, np.int64)
    key = np.zeros(n_h)
    pos, load, cap_on, cap_abs = 0, 0.0, 0.0, 0.0
    start, members = np.zeros(0, np.int64), np.zeros(0, np.int64)
    while max_hosts < 0 or emptied < max_hosts:
        if changed:
            start, members = _by_host(vm_host, n_h)
        if changed and not compat:
            pos, load, cap_on = 0, h_cur.sum(), _cap_on(h_on, h_num, h_count, -1)
            cap_abs = 0.0
            for h in range(n_h):
                if h_on[h] and h_count[h] > 0:
                    cap_abs += abs(h_num[0, h])
                util = h_cur[h] / h_num[0, h]
                key[h] = util if h_count[h] > 0 and util < underload and h_on[h] else np.inf
            order = np.argsort(key, kind="mergesort")  # stable: ties go to the lowest index
        changed = False
        host = -1
        if compat:
            while next_rank < len(ranked) and tried[ranked[next_rank]]:
                next_rank += 1  # a tried host never comes back
            for r in range(next_rank, len(ranked)):
                if not tried[ranked[r]] and h_count[ranked[r]] > 0:
                    host = ranked[r]
                    break
        elif rank_by != BY_UTILISATION:
            host = _cheapest(rank_by, underload, tried, blocked, V, H, S)
        else:  # the lowest utilisation now (the first in `order` not tried nor blocked)
            while pos < n_h and key[order[pos]] < np.inf:
                if not tried[order[pos]] and not blocked[order[pos]]:
                    host = order[pos]
                    break
                pos += 1  # tried or blocked: so until the state changes
        if host < 0:
            break
        tried[host] = True
        excluded[host] = True
        ev_host[n_ev], ev_first[n_ev] = host, n_mv
        ev_util[n_ev] = h_cur[host] / h_num[0, host]
        n_ev += 1
        if not compat and not _keeps_headroom(host, load, cap_on, cap_abs, headroom, h_on,
                                              h_num, h_count):
            ev_what[n_ev - 1] = NO_HEADROOM
            continue
        # The moves go to rows n_mv.. of the outputs; a drain that fails leaves them to the next.
        what, k, learned = _drain(host, p, excluded, V, H, S, fixed, budget, mv_vm[n_mv:],
                                  mv_dst[n_mv:], counts[n_mv:], top_h[n_mv:], top_c[n_mv:],
                                  n_top[n_mv:], mem_fail, start, members)
        ev_what[n_ev - 1] = what
        if learned < mem_fail:
            mem_fail = learned
        if what != DRAINED:
            continue
        changed, mem_fail = True, np.inf
        end = n_mv + k
        emptied += 1
        budget -= k
        for i in range(n_mv, end):
            if compat:  # CloudSim: a drain's destinations are no longer under-loaded
                tried[mv_dst[i]] = True
            else:  # a host that just received VMs is not a candidate
                blocked[mv_dst[i]] = True
        n_mv = end
    return (ev_host[:n_ev], ev_what[:n_ev], ev_first[:n_ev], ev_util[:n_ev], mv_vm[:n_mv],
            mv_dst[:n_mv], counts[:n_mv], top_h[:n_mv], top_c[:n_mv], n_top[:n_mv])


@numba.njit(cache=True)
def _cheapest(order: int, underload: float, tried: np.ndarray, blocked: np.ndarray,
              V: tuple, H: tuple, S: tuple) -> int:  # type: ignore[type-arg]
    """The next candidate, lowest first (ties: the lowest index): by (VMs, cost,
    utilisation) for `BY_FEWEST_VMS`, by (cost, VMs, utilisation) for `BY_CHEAPEST`; cost is
    the sum of CPU now x RAM of the host's VMs. -1 if no host is a candidate. Only the
    candidates' own VMs count, and a drain changes no
    candidate's (its destinations are blocked), so the order is the same as if kept fixed."""
    vm_num = V[0]
    h_on, h_num = H[0], H[1]
    h_cur, h_count, vm_host = S[0], S[3], S[8]
    n_h = len(h_cur)
    cost = np.zeros(n_h)
    for i in range(len(vm_host)):
        if vm_host[i] >= 0:
            cost[vm_host[i]] += vm_num[i, CPU_NOW] * vm_num[i, RAM]
    host, best_a, best_b, best_u = -1, np.inf, np.inf, np.inf
    for h in range(n_h):
        util = h_cur[h] / h_num[0, h]
        if tried[h] or h_count[h] <= 0 or not util < underload or not h_on[h] or blocked[h]:
            continue
        a, b = (float(h_count[h]), cost[h]) if order == BY_FEWEST_VMS else (cost[h],
                                                                           float(h_count[h]))
        if host < 0 or a < best_a or (a == best_a and (b < best_b or (
                b == best_b and util < best_u))):
            host, best_a, best_b, best_u = h, a, b, util
    return host


@numba.njit(cache=True)
def _by_host(vm_host: np.ndarray, n_h: int) -> tuple[np.ndarray, np.ndarray]:
    """Every host's VMs in index order: host h's are `members[start[h]:start[h + 1]]`."""
    start = np.zeros(n_h + 1, np.int64)
    for i in range(len(vm_host)):
        if vm_host[i] >= 0:
            start[vm_host[i] + 1] += 1
    for h in range(n_h):
        start[h + 1] += start[h]
    fill = start[:-1].copy()
    members = np.zeros(start[n_h], np.int64)
    for i in range(len(vm_host)):
        h = vm_host[i]
        if h >= 0:
            members[fill[h]] = i
            fill[h] += 1
    return start, members


@numba.njit(cache=True)
def _cap_on(h_on: np.ndarray, h_num: np.ndarray, h_count: np.ndarray, skip: int) -> float:
    """The CPU of the hosts that are on and hold VMs, but `skip`, summed in host order."""
    cap = 0.0
    for h in range(len(h_count)):
        if h_on[h] and h_count[h] > 0 and h != skip:
            cap += h_num[0, h]
    return cap


@numba.njit(cache=True)
def _keeps_headroom(host: int, load: float, cap_on: float, cap_abs: float, headroom: float,
                    h_on: np.ndarray, h_num: np.ndarray, h_count: np.ndarray) -> bool:
    """The hosts left on without `host` hold `load` (every host's) plus the headroom:
    `load <= (1 - headroom) x _cap_on(..., host)`. That sum and `cap_on` (every such host's)
    minus the host's CPU differ by less than n roundings of `cap_abs` (the sum of their
    absolute values) each, so outside a margin of several times that the difference decides;
    inside it (or with anything not finite), the sum is taken as before."""
    f = 1.0 - headroom
    if (f >= 0.0 and h_on[host] and h_count[host] > 0 and math.isfinite(cap_abs)
            and math.isfinite(load)):
        approx = cap_on - h_num[0, host]
        margin = 4.0 * (len(h_count) + 2) * 2.3e-16 * cap_abs
        if load <= f * (approx - margin):
            return True
        if not load <= f * (approx + margin):
            return False
    return bool(load <= f * _cap_on(h_on, h_num, h_count, host))
