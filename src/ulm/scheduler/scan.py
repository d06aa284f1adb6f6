"""The placement scan, compiled: every filter and the ranking of one VM over every host.

This is the scheduler's one implementation of the placement filters (`placement.py` gives it
the state and names the reasons); the daemon, `ulm plan`, the drain check and the simulator all
run it. It is compiled with numba because a placement is the scheduler's innermost step: a
CloudSim day places ~31,000 VMs, one after another (each placement changes what the next
sees, so they cannot be batched), and as numpy vector operations a placement took ~75 calls of
~2 us each. One pass over the hosts in machine code takes a few microseconds.

Every expression is written as the numpy version it replaced wrote it, in the same order, so
results are the same to the last bit (the CloudSim comparison tables did not move).
"""

from __future__ import annotations

import math

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)

# Reason codes, in the order the filters apply (`filters.FILTERS`, the one table of them):
# a host is rejected by the first that fails.
from ulm.scheduler.filters import (
    AFFINITY,
    BACKOFF,
    CORES,
    CPU,
    CPUMODEL,
    EMPTY,
    EXCLUDED,
    HOT,
    MEMORY,
    N_REASONS,
    ON,
    OVERLOAD,
    PASS,
    RULE,
    SLOTS,
    TOGETHER,
)
from ulm.scheduler.limits import exceeds
from ulm.scheduler.spread import (  # the IQR / MAD detector's arithmetic
    MAX_HISTORY,
    _decided,
    _spread_with,
    _window_range,
)

DETECTOR = {"none": 0, "threshold": 1, "lr": 2, "lrr": 2, "iqr": 3, "mad": 4}
RANKING = {"pabfd": 0, "first-fit": 1, "balance": 2, "memory-fit": 3}

# Indices into the parameter vector (one float64 array: numba dispatch costs per argument).
(P_COMPAT, P_CPU_OC, P_MEM_OC, P_CAP_AFTER, P_DETECTOR, P_THRESHOLD, P_SAFETY, P_MIN_LR,
 P_FALLBACK, P_MIN_IQR, P_SLOTS, P_MIB_PER_S, P_INTERVAL, P_MAX_AFTER, P_ALLOW_EMPTY,
 P_RANKING, P_SUSTAIN, P_WINDOW, P_MEM_THRESHOLD, P_TOLERANCE, P_SHOULD) = range(21)
N_PARAMS = 21

# Columns of the per-VM number table (`State.vm_num`).
DEMAND, MEM, VCPUS, LEN, CPU_NOW, RAM, MEM_USE = range(7)

# The kernels take the scheduler's state as three tuples of arrays (numba's dispatch costs
# per argument; a tuple is one):
#   V (per VM, fixed):  vm_num V x 7, vm_lr V x 2 (0 x 2 unless LR), vm_hist V x W,
#                       vm_src (the snapshot's host), member V x G (anti-affinity groups),
#                       vm_class (V, or 0 without rules: the VM's row of the class masks),
#                       deny C x H (the first masked filter that forbids the host, or PASS),
#                       prefer C x H (0 x 0 without should rules: the share of the class's
#                       should rules the host misses, [0, 1]; `scheduler.masks`),
#                       together V x T (keep-together groups, T = 0 without; `groups`)
#   H (per host, fixed): host_on, host_num 4 x H (CPU, CPU of one core, cores, memory),
#                       host_curve, curve_x, curve_w, curve_len, start_watts
#   S (working, mutated): host_cur, host_hist, host_mem, host_count, host_busy, host_len,
#                       host_lr, biggest, vm_host, host_mem_use

LR_POINTS = 10


@numba.njit(cache=True, inline="always")
def _interp(x: float, c: int, curve_x: np.ndarray, curve_w: np.ndarray, last: int) -> float:
    """`np.interp(x, xs, ws)` on curve `c` (`xs = curve_x[c, :last + 1]`) for one point, as
    numpy's C code computes it. The search starts where an even grid would put x (power
    curves are one). Rows are indexed, not sliced: a slice per host cost more than the rest."""
    if x < curve_x[c, 0]:
        return float(curve_w[c, 0])
    if x > curve_x[c, last]:
        return float(curve_w[c, last])
    j = min(max(int(x * last), 0), last)
    while j > 0 and curve_x[c, j] > x:
        j -= 1
    while j < last and curve_x[c, j + 1] <= x:
        j += 1
    if j == last or curve_x[c, j] == x:
        return float(curve_w[c, j])
    slope = (curve_w[c, j + 1] - curve_w[c, j]) / (curve_x[c, j + 1] - curve_x[c, j])
    return float(slope * (x - curve_x[c, j]) + curve_w[c, j])


@numba.njit(cache=True)
def _spread_over(h: int, used: float, length: int, detector: int, p: np.ndarray,
                 h_hist: np.ndarray, v_hist: np.ndarray, cap: float) -> bool:
    """IQR / MAD: over when the load is above 1 - safety x spread (THR when history is short)."""
    if length >= p[P_MIN_IQR]:
        width = min(h_hist.shape[1], MAX_HISTORY)
        start = h_hist.shape[1] - width
        low, high, finite = _window_range(h_hist[h], v_hist, start, width, length, cap)
        verdict = _decided(used, cap, low, high, finite, length, width, detector,
                           p[P_SAFETY], p[P_TOLERANCE])
        if verdict >= 0:
            return verdict == 1
        limit = 1.0 - p[P_SAFETY] * _spread_with(h, length, detector, h_hist, v_hist, cap)
        return bool(exceeds(used, cap, limit, p[P_TOLERANCE]))
    return bool(exceeds(used, cap, p[P_FALLBACK], p[P_TOLERANCE]))


@numba.njit(cache=True)
def _lr_over(used: float, length: int, line0: float, line1: float, biggest: float,
             v_horizon: float, cap: float, p: np.ndarray) -> bool:
    """LR's verdict on a host from its line plus the VM's (see `State.host_lr`)."""
    return _lr_verdict(used, length, line0, line1, biggest, v_horizon, cap, p[P_MIB_PER_S],
                       p[P_INTERVAL], p[P_SAFETY], p[P_MIN_LR], p[P_FALLBACK], p[P_TOLERANCE])


@numba.njit(cache=True, inline="always")
def _lr_verdict(used: float, length: int, line0: float, line1: float, biggest: float,
                v_horizon: float, cap: float, mib_per_s: float, interval: float,
                safety: float, min_lr: float, fallback: float, tol: float) -> bool:
    """Over when safety x the predicted utilisation exceeds 1 (CloudSim writes `>= 1`; the
    two differ only at exact equality, which a least-squares prediction does not hit)."""
    horizon = max(math.ceil(biggest / mib_per_s / interval), v_horizon)
    at = LR_POINTS + horizon - (LR_POINTS + 1) / 2.0
    predicted = (line0 + line1 * at) / cap
    if length >= min_lr:
        return bool(exceeds(safety * predicted, 1.0, 1.0, tol))
    return bool(exceeds(used, cap, fallback, tol))


@numba.njit(cache=True)
def _taken(vm: int, V: tuple, S: tuple, n_hosts: int) -> np.ndarray:  # type: ignore[type-arg]
    """Hosts holding another VM of one of `vm`'s anti-affinity groups, in the working placement."""
    member, vm_host = V[4], S[8]
    taken = np.zeros(n_hosts, np.bool_)
    for g in range(member.shape[1]):
        if member[vm, g]:
            for i in range(member.shape[0]):
                if i != vm and member[i, g] and vm_host[i] >= 0:
                    taken[vm_host[i]] = True
    return taken


@numba.njit(cache=True)
def _mates(vm: int, together: np.ndarray, vm_host: np.ndarray, excluded: np.ndarray,
           n_hosts: int) -> np.ndarray:
    """Hosts holding a keep-together mate of `vm` in the working placement, mates on an
    excluded host not counted (a drain's source: they leave with the VM); empty when no
    mate counts (then any host will do: the first of a group to leave chooses)."""
    mates = np.zeros(n_hosts, np.bool_)
    found = False
    for g in range(together.shape[1]):
        if together[vm, g]:
            for i in range(together.shape[0]):
                at = vm_host[i]
                if i != vm and together[i, g] and at >= 0 and not excluded[at]:
                    mates[at] = True
                    found = True
    return mates if found else np.zeros(0, np.bool_)


@numba.njit(cache=True)
def _scan(vm: int, p: np.ndarray, excluded: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
          S: tuple, reason: np.ndarray, cost: np.ndarray, counts: np.ndarray,  # type: ignore[type-arg]
          hosts: np.ndarray, n_off: int) -> None:
    """Filters and ranks `hosts` (ascending) for one VM: per host the first reason that
    rejects it (`PASS` if none) and the ranking cost (lower wins; inf where rejected); per
    reason the number of hosts it rejected. Hosts left out of `hosts` are `n_off` off ones
    and excluded ones (`loops.candidates`): counted, their rows not written."""
    vm_num, vm_lr, vm_hist, vm_src, member, vm_class, deny, prefer, together = V
    h_on, h_num, h_curve, curve_x, curve_w, curve_len, start_watts = H
    h_cur, h_hist, h_mem, h_count, h_busy, h_len, h_lr, h_biggest, _, h_mem_use = S
    n = len(h_cur)
    demand, mem, vcpus, v_len = vm_num[vm, DEMAND], vm_num[vm, MEM], vm_num[vm, VCPUS], int(
        vm_num[vm, LEN])
    mem_use, mem_threshold = vm_num[vm, MEM_USE], p[P_MEM_THRESHOLD]
    v_line = vm_lr[vm] if vm_lr.shape[0] > 0 else np.zeros(2)
    v_horizon = math.ceil(vm_num[vm, RAM] / p[P_MIB_PER_S] / p[P_INTERVAL])
    compat = p[P_COMPAT] > 0
    src = vm_src[vm]
    slots = int(p[P_SLOTS])
    max_after = p[P_MAX_AFTER]
    ranking = int(p[P_RANKING])
    taken = _taken(vm, V, S, n) if member.shape[1] > 0 else np.zeros(0, np.bool_)
    use_taken = len(taken) > 0
    mates = (_mates(vm, together, S[8], excluded, n) if together.shape[1] > 0
             else np.zeros(0, np.bool_))
    use_mates = len(mates) > 0
    source_full = slots >= 0 and src >= 0 and h_busy[src] >= slots
    h_cpu, v_hist = h_num[0], vm_hist[vm]
    v_line0, v_line1 = v_line[0], v_line[1]
    cap_after, detector, threshold = p[P_CAP_AFTER], int(p[P_DETECTOR]), p[P_THRESHOLD]
    # Parameters in locals: read from `p` in the loop, they were reloaded for every host.
    allow_empty, cpu_oc, mem_oc = p[P_ALLOW_EMPTY] != 0, p[P_CPU_OC], p[P_MEM_OC]
    mib_per_s, interval = p[P_MIB_PER_S], p[P_INTERVAL]
    safety, min_lr, fallback, tol = p[P_SAFETY], p[P_MIN_LR], p[P_FALLBACK], p[P_TOLERANCE]
    c = vm_class[vm] if len(vm_class) > 0 else -1  # -1: no rule names this VM's class
    should = p[P_SHOULD] if c >= 0 and prefer.shape[0] > 0 else 0.0
    counts[:] = 0
    if len(hosts) < n:  # those left out fail ON or EXCLUDED, whatever the VM
        counts[ON], counts[EXCLUDED] = n_off, n - len(hosts) - n_off
        if not compat and src >= 0 and not h_on[src]:  # the source is never "not on"
            counts[ON], counts[EXCLUDED] = n_off - 1, n - len(hosts) - n_off + 1
    for h in hosts:
        cap = h_cpu[h]
        used = h_cur[h] + demand
        after = used / cap
        masked = deny[c, h] if c >= 0 else PASS
        if not compat and not (h_on[h] or h == src):
            why = ON
        elif excluded[h] or h == src:
            why = EXCLUDED
        elif masked == RULE:
            why = RULE
        elif masked == CPUMODEL:
            why = CPUMODEL
        elif masked == BACKOFF:
            why = BACKOFF
        elif not allow_empty and h_count[h] <= 0:
            why = EMPTY
        elif (compat and not h_num[1, h] >= demand - 1e-9) or (
                not compat and not h_num[2, h] >= vcpus):
            why = CORES
        elif exceeds(used, cap, cpu_oc, tol):
            why = CPU
        elif exceeds(h_mem[h] + mem, h_num[3, h], mem_oc, tol):
            why = MEMORY
        elif use_taken and taken[h]:
            why = AFFINITY
        elif use_mates and not mates[h]:
            why = TOGETHER
        elif slots >= 0 and (source_full or h_busy[h] >= slots):
            why = SLOTS
        elif exceeds(h_mem_use[h] + mem_use, h_num[3, h], mem_threshold, tol):
            why = OVERLOAD  # memory pressure after the move, as `core.overloaded_hosts` sees it
        elif not math.isnan(cap_after) and exceeds(used, cap, cap_after, tol):
            why = OVERLOAD  # the policy caps the destination's CPU after the move
        elif math.isnan(cap_after) and not (compat and h_cur[h] == 0) and (  # CloudSim skips
                # the check for hosts at 0 %; else the policy's own detector decides, as
                # `working.host_over` will on the host with the VM (the same `exceeds`)
                (detector == 1 and exceeds(used, cap, threshold, tol))
                or (detector == 2 and _lr_verdict(
                    used, max(h_len[h], v_len), h_lr[h, 0] + v_line0, h_lr[h, 1] + v_line1,
                    h_biggest[h], v_horizon, cap, mib_per_s, interval, safety, min_lr,
                    fallback, tol))
                or (detector >= 3 and _spread_over(h, used, max(h_len[h], v_len), detector, p,
                                                   h_hist, v_hist, cap))):
            why = OVERLOAD
        elif not math.isnan(max_after) and exceeds(used, cap, max_after, tol):
            why = HOT  # balancing: `core.balance` calls a host hot with the same `exceeds`
        else:
            why = PASS
        reason[h] = why
        if why != PASS:
            cost[h] = np.inf
            counts[why] += 1
        elif ranking == 0:  # PABFD: the smallest increase in power draw (Beloglazov & Buyya)
            curve = h_curve[h]
            capped = min(after, 1.0)
            if curve < 0:  # no power model: best fit on CPU, the fullest host that fits
                cost[h] = -capped
            else:
                last = curve_len[curve] - 1
                now = (start_watts[h] if compat else
                       _interp(min(h_cur[h] / cap, 1.0), curve, curve_x, curve_w, last))
                cost[h] = _interp(capped, curve, curve_x, curve_w, last) - now
        elif ranking == 1:  # first fit
            cost[h] = float(h)
        elif ranking == 3:  # memory fit: the least memory left after the move, then PABFD
            cost[h] = _memory_fit(h, mem, after, cap, h_cur[h], h_mem[h], h_num[3, h],
                                  h_curve[h], curve_x, curve_w, curve_len)
        else:  # balance: the least loaded host after the move, CPU or memory
            cost[h] = max(after, (h_mem[h] + mem) / max(h_num[3, h], 1e-9))
        if why == PASS and should > 0:  # should rules: a host missing them ranks worse
            cost[h] += should * prefer[c, h]


@numba.njit(cache=True)
def _memory_fit(h: int, mem: float, after: float, cap: float, cur: float, h_mem: float,
                h_cap: float, curve: int, curve_x: np.ndarray, curve_w: np.ndarray,
                curve_len: np.ndarray) -> float:
    """Best fit on memory, the resource that binds when every VM's RAM is reserved: the
    share of the host's memory left free after the move, plus PABFD's power increase as a
    tie-break (1e-6 per watt: below one MiB's share of any host up to 4 TiB, so memory
    decides whenever the free memory differs by a MiB)."""
    free = (h_cap - h_mem - mem) / max(h_cap, 1e-9)
    if curve < 0:
        return free
    last = curve_len[curve] - 1
    watts = (_interp(min(after, 1.0), curve, curve_x, curve_w, last)
             - _interp(min(cur / cap, 1.0), curve, curve_x, curve_w, last))
    return free + 1e-6 * watts


@numba.njit(cache=True)
def _top(cost: np.ndarray, top_h: np.ndarray, top_c: np.ndarray, hosts: np.ndarray) -> int:
    """The best of `hosts` (ascending) by (cost, host index), best first, into top_h/top_c;
    returns how many (0: none passed). The first is the choice: ties go to the lowest index."""
    k = 0
    for h in hosts:
        c = cost[h]
        if c == np.inf:
            continue
        j = k if k < len(top_h) else len(top_h)
        while j > 0 and c < top_c[j - 1]:  # strict: an equal cost keeps the lower index first
            j -= 1
        if j >= len(top_h):
            continue
        last = min(k, len(top_h) - 1)
        for m in range(last, j, -1):
            top_h[m], top_c[m] = top_h[m - 1], top_c[m - 1]
        top_h[j], top_c[j] = h, c
        k = min(k + 1, len(top_h))
    return k


@numba.njit(cache=True)
def place_one(vm: int, p: np.ndarray, excluded: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
              S: tuple, top_n: int) -> tuple:  # type: ignore[type-arg]
    """One VM: (reason per host, rejections per reason, top hosts, their costs, how many)."""
    n = len(S[0])
    reason = np.empty(n, np.int8)
    cost = np.empty(n)
    counts = np.zeros(N_REASONS, np.int64)
    every = np.arange(n)
    _scan(vm, p, excluded, V, H, S, reason, cost, counts, every, 0)
    top_h = np.zeros(top_n, np.int64)
    top_c = np.zeros(top_n)
    k = _top(cost, top_h, top_c, every)
    return reason, counts, top_h, top_c, k
