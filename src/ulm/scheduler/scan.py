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

import numba
import numpy as np

# Reason codes, in the order the filters apply: a host is rejected by the first that fails.
ON, EXCLUDED, EMPTY, CORES, CPU, MEMORY, AFFINITY, SLOTS, OVERLOAD, HOT = range(10)
N_REASONS = 10
PASS = -1

DETECTOR = {"none": 0, "threshold": 1, "lr": 2, "lrr": 2, "iqr": 3, "mad": 4}
RANKING = {"pabfd": 0, "first-fit": 1, "balance": 2}

# Indices into the parameter vector (one float64 array: numba dispatch costs per argument).
(P_COMPAT, P_CPU_OC, P_MEM_OC, P_CAP_AFTER, P_DETECTOR, P_THRESHOLD, P_SAFETY, P_MIN_LR,
 P_FALLBACK, P_MIN_IQR, P_SLOTS, P_MIB_PER_S, P_INTERVAL, P_MAX_AFTER, P_ALLOW_EMPTY,
 P_RANKING, P_SUSTAIN, P_WINDOW, P_MEM_THRESHOLD) = range(19)
N_PARAMS = 19

# Columns of the per-VM number table (`State.vm_num`).
DEMAND, MEM, VCPUS, LEN, CPU_NOW, RAM = range(6)

# The kernels take the scheduler's state as three tuples of arrays (numba's dispatch costs
# per argument; a tuple is one):
#   V (per VM, fixed):  vm_num V x 6, vm_lr V x 2 (0 x 2 unless LR), vm_hist V x W,
#                       vm_src (the snapshot's host), member V x G (anti-affinity groups)
#   H (per host, fixed): host_on, host_num 4 x H (CPU, CPU of one core, cores, memory),
#                       host_curve, curve_x, curve_w, curve_len, start_watts
#   S (working, mutated): host_cur, host_hist, host_mem, host_count, host_busy, host_len,
#                       host_lr, biggest, vm_host

LR_POINTS = 10
MAX_HISTORY = 30


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
def _median(values: np.ndarray) -> float:
    """`detectors.nan_median` of one row of valid samples (sorted in place)."""
    values.sort()
    n = len(values)
    hi = values[n // 2]
    lo = values[max((n - 1) // 2, 0)]
    return float(hi) if n % 2 == 1 else float((lo + hi) / 2.0)


@numba.njit(cache=True)
def _spread(row: np.ndarray, length: int, detector: int) -> float:
    """IQR (CloudSim's quartile index) or MAD of the newest `length` samples of `row`."""
    width = len(row)
    if detector == 3:
        data = np.full(width, np.inf)
        data[width - length:] = row[width - length:]
        data.sort()
        n = max(length, 1)
        q1 = min(max(math.floor(0.25 * (n + 1) + 0.5) - 1, 0), width - 1)
        q3 = min(max(math.floor(0.75 * (n + 1) + 0.5) - 1, 0), width - 1)
        return float(data[q3] - data[q1])
    sub = row[width - length:].copy()
    med = _median(sub.copy())
    return _median(np.abs(sub - med))


@numba.njit(cache=True)
def _spread_with(h: int, length: int, detector: int, h_hist: np.ndarray, v_hist: np.ndarray,
                 cap: float) -> float:
    """IQR / MAD of host `h`'s history plus the VM's, as fractions of the host."""
    width = min(h_hist.shape[1], MAX_HISTORY)
    start = h_hist.shape[1] - width
    row = np.empty(width)
    for k in range(width):
        row[k] = (h_hist[h, start + k] + v_hist[start + k]) / cap
    return _spread(row, length, detector)


@numba.njit(cache=True)
def _spread_over(h: int, after: float, length: int, detector: int, p: np.ndarray,
                 h_hist: np.ndarray, v_hist: np.ndarray, cap: float) -> bool:
    """IQR / MAD: over when the load is above 1 - safety x spread (THR when history is short)."""
    if length >= p[P_MIN_IQR]:
        return bool(after > 1.0 - p[P_SAFETY] * _spread_with(h, length, detector, h_hist,
                                                               v_hist, cap))
    return bool(after > p[P_FALLBACK])


@numba.njit(cache=True)
def _lr_over(after: float, length: int, line0: float, line1: float, biggest: float,
             v_horizon: float, cap: float, p: np.ndarray) -> bool:
    """LR's verdict on a host from its line plus the VM's (see `State.host_lr`)."""
    return _lr_verdict(after, length, line0, line1, biggest, v_horizon, cap, p[P_MIB_PER_S],
                       p[P_INTERVAL], p[P_SAFETY], p[P_MIN_LR], p[P_FALLBACK])


@numba.njit(cache=True, inline="always")
def _lr_verdict(after: float, length: int, line0: float, line1: float, biggest: float,
                v_horizon: float, cap: float, mib_per_s: float, interval: float,
                safety: float, min_lr: float, fallback: float) -> bool:
    horizon = max(math.ceil(biggest / mib_per_s / interval), v_horizon)
    at = LR_POINTS + horizon - (LR_POINTS + 1) / 2.0
    predicted = (line0 + line1 * at) / cap
    if length >= min_lr:
        return bool(safety * predicted >= 1.0)
    return bool(after > fallback)


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
def _scan(vm: int, p: np.ndarray, excluded: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
          S: tuple, reason: np.ndarray, cost: np.ndarray, counts: np.ndarray) -> None:  # type: ignore[type-arg]
    """Filters and ranks every host for one VM: per host the first reason that rejects it
    (`PASS` if none) and the ranking cost (lower wins; inf where rejected); per reason the
    number of hosts it rejected."""
    vm_num, vm_lr, vm_hist, vm_src, member = V
    h_on, h_num, h_curve, curve_x, curve_w, curve_len, start_watts = H
    h_cur, h_hist, h_mem, h_count, h_busy, h_len, h_lr, h_biggest, _ = S
    n = len(h_cur)
    demand, mem, vcpus, v_len = vm_num[vm, DEMAND], vm_num[vm, MEM], vm_num[vm, VCPUS], int(
        vm_num[vm, LEN])
    v_line = vm_lr[vm] if vm_lr.shape[0] > 0 else np.zeros(2)
    v_horizon = math.ceil(vm_num[vm, RAM] / p[P_MIB_PER_S] / p[P_INTERVAL])
    compat = p[P_COMPAT] > 0
    src = vm_src[vm]
    slots = int(p[P_SLOTS])
    max_after = p[P_MAX_AFTER]
    ranking = int(p[P_RANKING])
    taken = _taken(vm, V, S, n) if member.shape[1] > 0 else np.zeros(0, np.bool_)
    use_taken = len(taken) > 0
    source_full = slots >= 0 and src >= 0 and h_busy[src] >= slots
    h_cpu, v_hist = h_num[0], vm_hist[vm]
    v_line0, v_line1 = v_line[0], v_line[1]
    cap_after, detector, threshold = p[P_CAP_AFTER], int(p[P_DETECTOR]), p[P_THRESHOLD]
    # Parameters in locals: read from `p` in the loop, they were reloaded for every host.
    allow_empty, cpu_oc, mem_oc = p[P_ALLOW_EMPTY] != 0, p[P_CPU_OC], p[P_MEM_OC]
    mib_per_s, interval = p[P_MIB_PER_S], p[P_INTERVAL]
    safety, min_lr, fallback = p[P_SAFETY], p[P_MIN_LR], p[P_FALLBACK]
    counts[:] = 0
    for h in range(n):
        cap = h_cpu[h]
        after = (h_cur[h] + demand) / cap
        if not compat and not (h_on[h] or h == src):
            why = ON
        elif excluded[h] or h == src:
            why = EXCLUDED
        elif not allow_empty and h_count[h] <= 0:
            why = EMPTY
        elif (compat and not h_num[1, h] >= demand - 1e-9) or (
                not compat and not h_num[2, h] >= vcpus):
            why = CORES
        elif not h_cur[h] + demand <= cap * cpu_oc + 1e-9:
            why = CPU
        elif not h_mem[h] + mem <= h_num[3, h] * mem_oc + 1e-9:
            why = MEMORY
        elif use_taken and taken[h]:
            why = AFFINITY
        elif slots >= 0 and (source_full or h_busy[h] >= slots):
            why = SLOTS
        elif not math.isnan(cap_after) and not after <= cap_after + 1e-9:
            why = OVERLOAD  # the policy caps the destination's CPU after the move
        elif math.isnan(cap_after) and not (compat and h_cur[h] == 0) and (  # CloudSim skips
                # the check for hosts at 0 %; else the policy's own detector decides
                (detector == 1 and not after <= threshold + 1e-9)
                or (detector == 2 and _lr_verdict(
                    after, max(h_len[h], v_len), h_lr[h, 0] + v_line0, h_lr[h, 1] + v_line1,
                    h_biggest[h], v_horizon, cap, mib_per_s, interval, safety, min_lr,
                    fallback))
                or (detector >= 3 and _spread_over(h, after, max(h_len[h], v_len), detector, p,
                                                   h_hist, v_hist, cap))):
            why = OVERLOAD
        elif not math.isnan(max_after) and not after <= max_after + 1e-9:
            why = HOT
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
        else:  # balance: the least loaded host after the move, CPU or memory
            cost[h] = max(after, (h_mem[h] + mem) / max(h_num[3, h], 1e-9))


@numba.njit(cache=True)
def _top(cost: np.ndarray, top_h: np.ndarray, top_c: np.ndarray) -> int:
    """The best hosts by (cost, host index), best first, into top_h/top_c; returns how many
    (0: no host passed). The first is the choice: ties go to the lowest host index."""
    k = 0
    for h in range(len(cost)):
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
def host_over(h: int, p: np.ndarray, S: tuple, h_cpu: np.ndarray) -> bool:  # type: ignore[type-arg]
    """The policy's CPU overload detector on host `h` as it is in the working state
    (`detectors.overloaded`, which the tests hold this to; LR from the state's lines)."""
    h_cur, h_hist, h_len, h_lr, h_biggest = S[0], S[1], S[5], S[6], S[7]
    detector = int(p[P_DETECTOR])
    cap = h_cpu[h]
    current = h_cur[h] / cap
    length = h_len[h]
    if detector == 0:
        return False
    if detector == 2:
        return _lr_over(current, length, h_lr[h, 0], h_lr[h, 1], h_biggest[h], 0.0, cap, p)
    width = min(h_hist.shape[1], MAX_HISTORY)
    start = h_hist.shape[1] - width
    if detector == 1:  # at least `sustain` of the last `window` samples, and now
        threshold, sustain = p[P_THRESHOLD], int(p[P_SUSTAIN])
        if sustain <= 1 or not current > threshold:
            return bool(current > threshold)
        win = min(int(p[P_WINDOW]), width)
        first_valid = win - max(length, 1)
        over = 0
        for k in range(max(first_valid, 0), win):
            value = current if k == win - 1 else h_hist[h, start + width - win + k] / cap
            if value > threshold:
                over += 1
        return over >= sustain
    if length >= p[P_MIN_IQR]:  # IQR / MAD
        row = np.empty(width)
        for k in range(width):
            row[k] = h_hist[h, start + k] / cap
        return bool(current > 1.0 - p[P_SAFETY] * _spread(row, length, detector))
    return bool(current > p[P_FALLBACK])


@numba.njit(cache=True)
def hosts_over(hosts: np.ndarray, p: np.ndarray, S: tuple,  # type: ignore[type-arg]
               h_cpu: np.ndarray) -> np.ndarray:
    out = np.zeros(len(hosts), np.bool_)
    for i in range(len(hosts)):
        out[i] = host_over(hosts[i], p, S, h_cpu)
    return out


# Selection rules the compiled relief loop knows (`selection.KEYED`): the VM with the
# smallest key leaves first; "cost" is ULM's rule (see `selection.cost`).
KEY_RULE, COST_RULE = 0, 1


@numba.njit(cache=True)
def select(hosts: np.ndarray, p: np.ndarray, V: tuple, S: tuple,  # type: ignore[type-arg]
           h_cpu: np.ndarray, h_mem_cap: np.ndarray, vm_mem_use: np.ndarray,
           fixed: np.ndarray, moved: np.ndarray, rule: int, key: np.ndarray) -> tuple:  # type: ignore[type-arg]
    """Relief's selection (`core.relieve`), compiled: from each overloaded host, VMs leave
    one by one (taken off the working state) until the host is no longer overloaded, on CPU
    by the detector or on memory use. Returns the chosen VMs and their hosts, in order, and
    the hosts left overloaded with no movable VM."""
    vm_num, vm_host = V[0], S[8]
    n_v = len(vm_host)
    chosen = np.zeros(n_v, np.int64)
    chosen_host = np.zeros(n_v, np.int64)
    stuck = np.zeros(len(hosts), np.int64)
    on = np.zeros(n_v, np.int64)
    n_chosen, n_stuck = 0, 0
    for h in hosts:
        k = 0
        mem_used = 0.0
        for i in range(n_v):
            if vm_host[i] == h:
                on[k] = i
                k += 1
                mem_used += vm_mem_use[i]
        limit = p[P_MEM_THRESHOLD] * h_mem_cap[h]
        mem_can_be_over = mem_used > limit  # memory use only falls as VMs leave
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
            if not mem_can_be_over:
                break
            mem_used = 0.0
            for m in range(k):
                mem_used += vm_mem_use[on[m]]
            if not mem_used > limit:
                break
    return chosen[:n_chosen], chosen_host[:n_chosen], stuck[:n_stuck]


@numba.njit(cache=True)
def _cost_pick(on: np.ndarray, h: int, p: np.ndarray, vm_num: np.ndarray, h_cur: np.ndarray,
               h_cpu: np.ndarray, fixed: np.ndarray, moved: np.ndarray) -> int:
    """`selection.cost`: the least RAM among VMs that relieve the host alone, else the most
    CPU per MiB."""
    excess = h_cur[h] - p[P_THRESHOLD] * h_cpu[h]
    best, best_mem = -1, 0.0
    for v in on:
        if not fixed[v] and not moved[v] and vm_num[v, CPU_NOW] >= excess and (
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


# -- the working state: a VM leaves or joins a host ----------------------------------------

@numba.njit(cache=True)
def _row_length(row: np.ndarray) -> int:
    """`detectors.valid_length` of one row."""
    for k in range(len(row)):
        if abs(row[k]) > 1e-12:
            return min(len(row) - k, MAX_HISTORY)
    return 0


@numba.njit(cache=True)
def remove(vm: int, V: tuple, S: tuple) -> None:  # type: ignore[type-arg]
    """Takes the VM off its working host (selection: "as if it had left")."""
    vm_num, vm_lr, vm_hist = V[0], V[1], V[2]
    h_cur, h_hist, h_mem, h_count, _, h_len, h_lr, _, vm_host = S
    h = vm_host[vm]
    h_cur[h] -= vm_num[vm, CPU_NOW]
    h_hist[h] -= vm_hist[vm]
    h_mem[h] -= vm_num[vm, MEM]
    h_count[h] -= 1
    h_len[h] = _row_length(h_hist[h])
    if h_lr.shape[0] > 0:
        h_lr[h] -= vm_lr[vm]
    vm_host[vm] = -1


@numba.njit(cache=True)
def add(vm: int, host: int, V: tuple, S: tuple, back: bool) -> None:  # type: ignore[type-arg]
    """Puts the VM on `host`. A destination is charged the VM's *estimated* demand (what it
    must absorb); `back` undoes `remove` instead: the VM stays, with its current load."""
    vm_num, vm_lr, vm_hist = V[0], V[1], V[2]
    h_cur, h_hist, h_mem, h_count, _, h_len, h_lr, h_biggest, vm_host = S
    if back:
        h_cur[host] += vm_num[vm, CPU_NOW]
    else:
        h_biggest[host] = max(h_biggest[host], vm_num[vm, RAM])
        h_cur[host] += vm_num[vm, DEMAND]
    h_hist[host] += vm_hist[vm]
    h_mem[host] += vm_num[vm, MEM]
    h_count[host] += 1
    h_len[host] = max(h_len[host], int(vm_num[vm, LEN]))
    if h_lr.shape[0] > 0:
        h_lr[host] += vm_lr[vm]
    vm_host[vm] = host


# -- entry points ---------------------------------------------------------------------------

@numba.njit(cache=True)
def place_one(vm: int, p: np.ndarray, excluded: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
              S: tuple, top_n: int) -> tuple:  # type: ignore[type-arg]
    """One VM: (reason per host, rejections per reason, top hosts, their costs, how many)."""
    n = len(S[0])
    reason = np.empty(n, np.int8)
    cost = np.empty(n)
    counts = np.zeros(N_REASONS, np.int64)
    _scan(vm, p, excluded, V, H, S, reason, cost, counts)
    top_h = np.zeros(top_n, np.int64)
    top_c = np.zeros(top_n)
    k = _top(cost, top_h, top_c)
    return reason, counts, top_h, top_c, k


@numba.njit(cache=True)
def _place_seq(vms: np.ndarray, srcs: np.ndarray, p: np.ndarray, excluded: np.ndarray,
               V: tuple, H: tuple, S: tuple, budget: int, drain: bool,  # type: ignore[type-arg]
               dst: np.ndarray, counts: np.ndarray, top_h: np.ndarray, top_c: np.ndarray,
               n_top: np.ndarray) -> bool:
    """`place_many` into the given output rows; False if a drain did not fit (undone)."""
    h_busy = S[4]
    n, k_vms = len(S[0]), len(vms)
    dst[:] = -3
    reason = np.empty(n, np.int8)
    cost = np.empty(n)
    left = budget
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
            add(vm, src, V, S, True)
            dst[i] = -1
            if drain:  # all or nothing: undo the partial drain
                for j in range(i - 1, -1, -1):
                    remove(vms[j], V, S)
                    add(vms[j], src, V, S, True)
                return False
            continue
        dst[i] = top_h[i, 0]
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
               V: tuple, H: tuple, S: tuple, budget: int, drain: bool,  # type: ignore[type-arg]
               top_n: int) -> tuple:  # type: ignore[type-arg]
    """Places VMs in order, each seeing the moves before it.

    Relief (`drain` False): the VMs were taken off their hosts by selection; one that finds
    no host, or comes after the move budget ran out, goes back to its source. Each move takes
    a migration slot on both ends at once. Drain (`drain` True): all or nothing — the VMs are
    still on their host; at the first that finds no host every move is undone and the rest
    are not tried; slots are taken only when all fit.
    Returns per VM the destination (-1 no host, -2 budget used up, -3 not tried), the
    rejections per reason, the top hosts and costs and how many.
    """
    k_vms = len(vms)
    dst = np.full(k_vms, -3, np.int64)
    counts = np.zeros((k_vms, N_REASONS), np.int64)
    top_h = np.zeros((k_vms, top_n), np.int64)
    top_c = np.zeros((k_vms, top_n))
    n_top = np.zeros(k_vms, np.int64)
    _place_seq(vms, srcs, p, excluded, V, H, S, budget, drain, dst, counts, top_h, top_c, n_top)
    return dst, counts, top_h, top_c, n_top


# Outcomes of a consolidation candidate (`consolidate`'s events).
DRAINED, STUCK, NO_FIT, NO_BUDGET, NO_HEADROOM = range(5)


@numba.njit(cache=True)
def consolidate(p: np.ndarray, V: tuple, H: tuple, S: tuple,  # type: ignore[type-arg]
                ranked: np.ndarray, tried: np.ndarray, excluded: np.ndarray,
                blocked: np.ndarray, fixed: np.ndarray, underload: float, max_hosts: int,
                budget: int, headroom: float, top_n: int) -> tuple:  # type: ignore[type-arg]
    """Empties the least-loaded hosts one at a time, each all or nothing (`core.consolidate`).

    Compat (CloudSim): candidates in the fixed order `ranked` (by utilisation at the round's
    start); a drain's destinations are no longer candidates. Otherwise: the host with the
    lowest utilisation now, among hosts that are on and not `blocked` (destinations of this
    round), and only if the hosts left on keep `headroom` free. `tried`, `excluded` change
    in place. Returns the events (host, outcome, first move, utilisation when picked) and the
    moves (VM, destination, rejections, top hosts and costs, how many), in order.
    """
    compat = p[P_COMPAT] > 0
    vm_num = V[0]
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
    buf = np.zeros(n_v, np.int64)
    n_ev, n_mv, emptied, next_rank = 0, 0, 0, 0
    while max_hosts < 0 or emptied < max_hosts:
        host = -1
        if compat:
            while next_rank < len(ranked) and tried[ranked[next_rank]]:
                next_rank += 1  # a tried host never comes back
            for r in range(next_rank, len(ranked)):
                if not tried[ranked[r]] and h_count[ranked[r]] > 0:
                    host = ranked[r]
                    break
        else:
            best = np.inf
            for h in range(n_h):
                util = h_cur[h] / h_num[0, h]
                if (not tried[h] and h_count[h] > 0 and util < underload and h_on[h]
                        and not blocked[h] and util < best):
                    host, best = h, util
        if host < 0:
            break
        tried[host] = True
        excluded[host] = True
        ev_host[n_ev], ev_first[n_ev] = host, n_mv
        ev_util[n_ev] = h_cur[host] / h_num[0, host]
        n_ev += 1
        if not compat:  # the hosts left on must still hold the load plus the headroom
            cap = 0.0
            for h in range(n_h):
                if h_on[h] and h_count[h] > 0 and h != host:
                    cap += h_num[0, h]
            if not h_cur.sum() <= (1.0 - headroom) * cap:
                ev_what[n_ev - 1] = NO_HEADROOM
                continue
        k, stuck = 0, False
        for i in range(n_v):
            if vm_host[i] == host:
                buf[k] = i
                stuck = stuck or fixed[i]
                k += 1
        if stuck or k > budget:
            ev_what[n_ev - 1] = STUCK if stuck else NO_BUDGET
            continue
        order = buf[:k].copy()  # hungriest first, ties by index (insertion sort: k is small)
        for i in range(1, k):
            v, j = order[i], i
            while j > 0 and vm_num[order[j - 1], DEMAND] < vm_num[v, DEMAND]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = v
        srcs = np.full(k, host, np.int64)
        end = n_mv + k
        if not _place_seq(order, srcs, p, excluded, V, H, S, k, True, mv_dst[n_mv:end],
                          counts[n_mv:end], top_h[n_mv:end], top_c[n_mv:end],
                          n_top[n_mv:end]):
            ev_what[n_ev - 1] = NO_FIT
            continue
        mv_vm[n_mv:end] = order
        ev_what[n_ev - 1] = DRAINED
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
