"""Consolidation's loop, compiled: empties the least-loaded hosts one at a time, each drain
all or nothing (`loops._drain`), until the round's limits say stop.

Hundreds of candidates are tried a round when most drains fail (honest mode: RAM reserved),
so the loop and what it needs between drains (the candidates' order, the capacity left on)
live here, next to each other, compiled; `packing.py` calls it and turns codes into moves.
"""

from __future__ import annotations

import math

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler.filters import N_REASONS
from ulm.scheduler.loops import DRAINED, NO_HEADROOM, _drain
from ulm.scheduler.scan import CPU_NOW, P_COMPAT, RAM
from ulm.scheduler.working import by_host

# Consolidation's order of candidates (`[consolidation] order`), outside compat.
BY_UTILISATION, BY_FEWEST_VMS, BY_CHEAPEST = range(3)
ORDERS = {"utilisation": BY_UTILISATION, "fewest-vms": BY_FEWEST_VMS, "cheapest": BY_CHEAPEST}


@numba.njit(cache=True)
def consolidate(p: np.ndarray, V: tuple, H: tuple, S: tuple,  # type: ignore[type-arg]
                ranked: np.ndarray, tried: np.ndarray, excluded: np.ndarray,
                blocked: np.ndarray, fixed: np.ndarray, underload: float, max_hosts: int,
                budget: int, headroom: float, top_n: int, rank_by: int,
                prio: np.ndarray) -> tuple:  # type: ignore[type-arg]
    """Empties the least-loaded hosts one at a time, each all or nothing (`core.consolidate`).

    Compat (CloudSim): candidates in the fixed order `ranked` (by utilisation at the round's
    start); a drain's destinations are no longer candidates. Otherwise: the host with the
    lowest utilisation now, among hosts that are on and not `blocked` (destinations of this
    round), and only if the hosts left on keep `headroom` free. `tried`, `excluded` change
    in place. `rank_by` (`ORDERS`) ranks the candidates outside compat: the lowest
    utilisation; or the fewest VMs (a host freed for the fewest migrations), then the cheapest
    drain, then the lowest utilisation; or the cheapest drain (sum over its VMs of CPU now x
    RAM, what the drain adds to the migrations' SLA cost), then the fewest VMs, then the
    lowest utilisation. With VM priorities (`prio`, per VM its rank; empty without), a host
    whose most important VM ranks lower is a candidate before any other, whichever the
    order: under the round's limits the lowest priority moves first (`top_rank`). Returns the
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
            start, members = by_host(vm_host, n_h)
        if changed and not compat:
            pos, load, cap_on = 0, h_cur.sum(), _cap_on(h_on, h_num, h_count, -1)
            cap_abs = 0.0
            for h in range(n_h):
                if h_on[h] and h_count[h] > 0:
                    cap_abs += abs(h_num[0, h])
                util = h_cur[h] / h_num[0, h]
                key[h] = util if h_count[h] > 0 and util < underload and h_on[h] else np.inf
            order = np.argsort(key, kind="mergesort")  # stable: ties go to the lowest index
            if len(prio):  # stable again: within a rank, the order above; non-candidates last
                top = top_rank(prio, vm_host, n_h)
                top[key == np.inf] = 1 << 30
                order = order[np.argsort(top[order], kind="mergesort")]
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
            host = _cheapest(rank_by, underload, tried, blocked, V, H, S,
                             top_rank(prio, vm_host, n_h) if len(prio) else prio)
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
              V: tuple, H: tuple, S: tuple,  # type: ignore[type-arg]
              top: np.ndarray) -> int:
    """The next candidate, lowest first (ties: the lowest index): by (VMs, cost,
    utilisation) for `BY_FEWEST_VMS`, by (cost, VMs, utilisation) for `BY_CHEAPEST`; cost is
    the sum of CPU now x RAM of the host's VMs. -1 if no host is a candidate. Only the
    candidates' own VMs count, and a drain changes no
    candidate's (its destinations are blocked), so the order is the same as if kept fixed.
    `top` (per host its highest VM rank, or empty) comes before all of them."""
    vm_num = V[0]
    h_on, h_num = H[0], H[1]
    h_cur, h_count, vm_host = S[0], S[3], S[8]
    n_h = len(h_cur)
    cost = np.zeros(n_h)
    for i in range(len(vm_host)):
        if vm_host[i] >= 0:
            cost[vm_host[i]] += vm_num[i, CPU_NOW] * vm_num[i, RAM]
    host, best_a, best_b, best_u, best_r = -1, np.inf, np.inf, np.inf, 0
    for h in range(n_h):
        util = h_cur[h] / h_num[0, h]
        if tried[h] or h_count[h] <= 0 or not util < underload or not h_on[h] or blocked[h]:
            continue
        a, b = (float(h_count[h]), cost[h]) if order == BY_FEWEST_VMS else (cost[h],
                                                                           float(h_count[h]))
        r = top[h] if len(top) else 0
        if host < 0 or r < best_r or (r == best_r and (a < best_a or (a == best_a and (
                b < best_b or (b == best_b and util < best_u))))):
            host, best_a, best_b, best_u, best_r = h, a, b, util, r
    return host


@numba.njit(cache=True)
def top_rank(prio: np.ndarray, vm_host: np.ndarray, n_h: int) -> np.ndarray:
    """Per host the highest priority rank of its VMs (-1: none)."""
    top = np.full(n_h, -1, np.int64)
    for i in range(len(vm_host)):
        if vm_host[i] >= 0 and prio[i] > top[vm_host[i]]:
            top[vm_host[i]] = prio[i]
    return top


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
