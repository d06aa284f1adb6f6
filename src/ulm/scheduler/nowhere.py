"""Relief's counts for a VM that fits nowhere, from sorted thresholds instead of a scan.

A VM that finds no host still needs its count per reason (its explain row and its `unplaced`
problem), so its scan cannot stop early; on a cluster short of room most of relief's VMs are
such VMs (20,000 hosts, 200,000 VMs: 33,000 of 37,000, each scanned over 6,600 hosts).

For VMs that share every figure the filters read but their CPU demand d (memory, memory use,
vCPUs, label class, whether their source's slots are full or it is off: the key), each
candidate host's fate splits into what d does not change — the masked filters, "empty host",
"too few cores" before the CPU filter, and "memory full", "migration slots full" and memory
pressure after it — and two comparisons of one form, `exceeds(h_cur + d, cap, limit)`: "CPU
full" (the overcommit) and "would overload" (the cap after the move, or the threshold
detector). Such a comparison is, up to rounding, d > tau with tau = (limit + tol) x cap -
h_cur. So per key the record keeps, per group of hosts (no later reason; each later reason),
the hosts sorted by tau: how many hosts a comparison rejects is where d falls in the sorted
taus, and only hosts whose tau is within `MARGIN` of d (relative to the figures' size, far
above what rounding can move: the error of a sum, a quotient and tau itself is a few units
in the last place) are compared exactly, with the scan's own `exceeds`. "CPU full" comes
first in the chain; "would overload" counts only where it did not reject, and when one
limit is at most the other the hosts one rejects are a subset of the other's, so that count
is a difference. A VM some host would take (no comparison rejects it) is scanned as before:
the ranking needs the full pass, and the placement changes a host.

A key's record is built when the first VM of that key fits nowhere (a cluster with room for
its VMs never pays for one), and then follows the working state: each candidate host that
changes (a placement's destination, a VM put back onto a candidate) is classified and
inserted again in every key.
Not used where a filter reads more of the VM (anti-affinity, keep-together groups: other
VMs' hosts; LR, IQR, MAD detectors: its history), in CloudSim mode (its core filter reads d
before the CPU filter), for balancing's "too hot", or where a host's figures are not finite
with a positive capacity.
"""

from __future__ import annotations

import math

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler.filters import (
    BACKOFF,
    CORES,
    CPU,
    CPUMODEL,
    EMPTY,
    EXCLUDED,
    MEMORY,
    N_REASONS,
    ON,
    OVERLOAD,
    PASS,
    RULE,
    SLOTS,
)
from ulm.scheduler.limits import exceeds
from ulm.scheduler.scan import (
    DEMAND,
    MEM,
    MEM_USE,
    P_ALLOW_EMPTY,
    P_CAP_AFTER,
    P_COMPAT,
    P_CPU_OC,
    P_DETECTOR,
    P_MAX_AFTER,
    P_MEM_OC,
    P_MEM_THRESHOLD,
    P_SLOTS,
    P_THRESHOLD,
    P_TOLERANCE,
    VCPUS,
)

KEY = 6  # memory, memory use, vCPUs, source's slots full, source off, label class
KEYS = 8  # keys kept at most (a cluster's VM shapes are few; more: scanned)
GROUPS = 4  # hosts no later filter rejects; "memory full"; "slots full"; memory pressure
LATER = (PASS, MEMORY, SLOTS, OVERLOAD)  # each group's reason when "CPU full" does not hit
MARGIN = 1e-12  # relative: ~10^4 units in the last place of the figures compared


@numba.njit(cache=True)
def usable(p: np.ndarray, V: tuple) -> bool:  # type: ignore[type-arg]
    """Whether the record can answer for this placement question (see the module)."""
    if V[4].shape[1] > 0 or V[8].shape[1] > 0 or p[P_COMPAT] > 0:
        return False
    if not math.isnan(p[P_MAX_AFTER]):
        return False
    return not (math.isnan(p[P_CAP_AFTER]) and p[P_DETECTOR] > 1)


@numba.njit(cache=True)
def record(n: int) -> tuple:  # type: ignore[type-arg]
    """An empty record for `n` hosts: keys; counts of the hosts d does not matter for; per
    group the taus and hosts sorted, and how many; the same for "would overload" in the
    first group; the figures' scale (for the margin, 0: the key cannot be answered); where
    each host is (its group, -1 none), and how many keys are in use."""
    return (np.zeros((KEYS, KEY)), np.zeros((KEYS, N_REASONS), np.int64),
            np.zeros((KEYS, GROUPS, n)), np.zeros((KEYS, GROUPS, n), np.int64),
            np.zeros((KEYS, GROUPS), np.int64), np.zeros((KEYS, n)),
            np.zeros((KEYS, n), np.int64), np.zeros(KEYS, np.int64), np.zeros(KEYS),
            np.full((KEYS, n), -2, np.int64), np.zeros(1, np.int64))


@numba.njit(cache=True)
def key_of(vm: int, p: np.ndarray, V: tuple, H: tuple, S: tuple,  # type: ignore[type-arg]
           candidate: np.ndarray, key: np.ndarray) -> bool:
    """Fills `key` with the VM's figures other than its demand; False: the record does not
    answer for this VM (its source is a candidate host, or a figure is not a number)."""
    vm_num, src = V[0], V[3][vm]
    if src >= 0 and candidate[src]:
        return False
    key[0], key[1], key[2] = vm_num[vm, MEM], vm_num[vm, MEM_USE], vm_num[vm, VCPUS]
    if not (math.isfinite(vm_num[vm, DEMAND]) and math.isfinite(key[0])
            and math.isfinite(key[1]) and math.isfinite(key[2])):
        return False
    slots = int(p[P_SLOTS])
    key[3] = 1.0 if slots >= 0 and src >= 0 and S[4][src] >= slots else 0.0
    key[4] = 1.0 if src >= 0 and not H[0][src] else 0.0
    key[5] = float(V[5][vm]) if len(V[5]) > 0 else -1.0
    return True


@numba.njit(cache=True)
def slot_of(rec: tuple, key: np.ndarray) -> int:  # type: ignore[type-arg]
    keys, used = rec[0], rec[10]
    for k in range(used[0]):
        same = True
        for j in range(KEY):
            if keys[k, j] != key[j]:
                same = False
                break
        if same:
            return k
    return -1


@numba.njit(cache=True)
def _limits(p: np.ndarray) -> tuple[float, float, bool]:
    """The two comparisons' limits as `exceeds` adds them up, and whether the second exists."""
    tol = p[P_TOLERANCE]
    if not math.isnan(p[P_CAP_AFTER]):
        return p[P_CPU_OC] + tol, p[P_CAP_AFTER] + tol, True
    return p[P_CPU_OC] + tol, p[P_THRESHOLD] + tol, p[P_DETECTOR] == 1


@numba.njit(cache=True)
def _classify(k: int, h: int, rec: tuple, p: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
              S: tuple) -> int:  # type: ignore[type-arg]
    """Host `h` for key `k`: the reason a filter before "CPU full" gives it (whatever d is),
    else -1 - its group. The same tests, in the same order, as `scan._scan`."""
    key, deny = rec[0][k], V[6]
    h_num, h_mem, h_count, h_busy, h_mem_use = H[1], S[2], S[3], S[4], S[9]
    c = int(key[5])
    masked = deny[c, h] if c >= 0 else PASS
    tol = p[P_TOLERANCE]
    if masked == RULE:  # one test per code, as the scan's chain has them
        return RULE
    if masked == CPUMODEL:
        return CPUMODEL
    if masked == BACKOFF:
        return BACKOFF
    if p[P_ALLOW_EMPTY] == 0 and h_count[h] <= 0:
        return EMPTY
    if not h_num[2, h] >= key[2]:
        return CORES
    slots = int(p[P_SLOTS])
    if exceeds(h_mem[h] + key[0], h_num[3, h], p[P_MEM_OC], tol):
        return -2
    if slots >= 0 and (key[3] != 0 or h_busy[h] >= slots):
        return -3
    if exceeds(h_mem_use[h] + key[1], h_num[3, h], p[P_MEM_THRESHOLD], tol):
        return -4
    return -1


@numba.njit(cache=True)
def _put(tau: np.ndarray, ids: np.ndarray, size: int, t: float, h: int) -> None:
    """Inserts (t, h) into the first `size` entries, kept sorted by tau."""
    j = np.searchsorted(tau[:size], t)
    for m in range(size, j, -1):
        tau[m], ids[m] = tau[m - 1], ids[m - 1]
    tau[j], ids[j] = t, h


@numba.njit(cache=True)
def _take(tau: np.ndarray, ids: np.ndarray, size: int, h: int) -> None:
    """Removes host h from the first `size` entries."""
    j = 0
    while ids[j] != h:
        j += 1
    for m in range(j, size - 1):
        tau[m], ids[m] = tau[m + 1], ids[m + 1]


@numba.njit(cache=True)
def _enter(k: int, h: int, rec: tuple, p: np.ndarray, V: tuple, H: tuple,  # type: ignore[type-arg]
           S: tuple) -> None:  # type: ignore[type-arg]
    """Host h into key k's record, as it is in the working state now."""
    _, fixed, tau, ids, size, tau_ov, ids_ov, n_ov, scale, where, _ = rec
    why = _classify(k, h, rec, p, V, H, S)
    if why >= 0:
        fixed[k, why] += 1
        where[k, h] = -1 - why - GROUPS  # <= -1 - GROUPS: a fixed reason
        return
    g = -1 - why
    cap, cur = H[1][0, h], S[0][h]
    lim_cpu, lim_ov, has_ov = _limits(p)
    if not (cap > 0 and math.isfinite(cap) and math.isfinite(cur)):
        scale[k] = 0.0  # the margin's bound needs finite figures and a positive capacity
    _put(tau[k, g], ids[k, g], size[k, g], lim_cpu * cap - cur, h)
    size[k, g] += 1
    if g == 0 and has_ov:
        _put(tau_ov[k], ids_ov[k], n_ov[k], lim_ov * cap - cur, h)
        n_ov[k] += 1
    if scale[k] > 0:
        scale[k] = max(scale[k], abs(lim_cpu * cap) + abs(lim_ov * cap) + abs(cur) + 1.0)
    where[k, h] = g


@numba.njit(cache=True)
def _leave(k: int, h: int, rec: tuple) -> None:  # type: ignore[type-arg]
    _, fixed, tau, ids, size, tau_ov, ids_ov, n_ov, _, where, _ = rec
    g = where[k, h]
    if g <= -1 - GROUPS:
        fixed[k, -1 - GROUPS - g] -= 1
    elif g >= 0:
        _take(tau[k, g], ids[k, g], size[k, g], h)
        size[k, g] -= 1
        if g == 0 and n_ov[k] > 0:
            _take(tau_ov[k], ids_ov[k], n_ov[k], h)
            n_ov[k] -= 1
    where[k, h] = -2


@numba.njit(cache=True)
def build(rec: tuple, key: np.ndarray, hosts: np.ndarray, p: np.ndarray,  # type: ignore[type-arg]
          V: tuple, H: tuple, S: tuple) -> int:  # type: ignore[type-arg]
    """A new key's record over the candidate hosts; its slot, or -1 if none is free."""
    keys, fixed, tau, ids, size, tau_ov, ids_ov, n_ov, scale, where, used = rec
    if used[0] >= KEYS:
        return -1
    k = used[0]
    used[0] += 1
    keys[k] = key
    fixed[k], size[k], n_ov[k], scale[k] = 0, 0, 0, 1.0
    lim_cpu, lim_ov, has_ov = _limits(p)
    for h in hosts:  # unsorted first, then each group sorted once
        why = _classify(k, h, rec, p, V, H, S)
        if why >= 0:
            fixed[k, why] += 1
            where[k, h] = -1 - why - GROUPS
            continue
        g = -1 - why
        cap, cur = H[1][0, h], S[0][h]
        if not (cap > 0 and math.isfinite(cap) and math.isfinite(cur)):
            scale[k] = 0.0
        tau[k, g, size[k, g]], ids[k, g, size[k, g]] = lim_cpu * cap - cur, h
        size[k, g] += 1
        if g == 0 and has_ov:
            tau_ov[k, n_ov[k]], ids_ov[k, n_ov[k]] = lim_ov * cap - cur, h
            n_ov[k] += 1
        if scale[k] > 0:
            scale[k] = max(scale[k], abs(lim_cpu * cap) + abs(lim_ov * cap) + abs(cur) + 1.0)
        where[k, h] = g
    for g in range(GROUPS):
        _sort(tau[k, g], ids[k, g], size[k, g])
    _sort(tau_ov[k], ids_ov[k], n_ov[k])
    return int(k)


@numba.njit(cache=True)
def _sort(tau: np.ndarray, ids: np.ndarray, size: int) -> None:
    order = np.argsort(tau[:size])
    tau[:size], ids[:size] = tau[:size][order], ids[:size][order]


@numba.njit(cache=True)
def changed(h: int, rec: tuple, p: np.ndarray, V: tuple,  # type: ignore[type-arg]
            H: tuple, S: tuple) -> None:  # type: ignore[type-arg]
    """Candidate host h changed in the working state: every key's record follows."""
    for k in range(rec[10][0]):
        _leave(k, h, rec)
        _enter(k, h, rec, p, V, H, S)


@numba.njit(cache=True)
def _over(tau: np.ndarray, ids: np.ndarray, size: int, d: float, margin: float,
          limit: float, tol: float, h_cur: np.ndarray, h_cpu: np.ndarray) -> int:
    """How many of the `size` hosts `exceeds(h_cur + d, cap, limit)` rejects: those whose
    tau is below d - margin, plus those within the margin that it rejects when asked."""
    lo = np.searchsorted(tau[:size], d - margin)
    hi = np.searchsorted(tau[:size], d + margin, side="right")
    n = lo
    for j in range(lo, hi):
        h = ids[j]
        if exceeds(h_cur[h] + d, h_cpu[h], limit, tol):
            n += 1
    return int(n)


@numba.njit(cache=True)
def counts_of(k: int, vm: int, rec: tuple, p: np.ndarray,  # type: ignore[type-arg]
              V: tuple, H: tuple, S: tuple,  # type: ignore[type-arg]
              n_cand: int, n_off: int, counts: np.ndarray) -> bool:
    """The VM's counts per reason into `counts`, if no host would take it (True); False: a
    host may (the VM is to be scanned)."""
    _, fixed, tau, ids, size, tau_ov, ids_ov, n_ov, scale, _, _ = rec
    if scale[k] <= 0:
        return False
    d = V[0][vm, DEMAND]
    margin = MARGIN * (scale[k] + abs(d))
    tol, h_cur, h_cpu = p[P_TOLERANCE], S[0], H[1][0]
    lim_cpu, lim_ov, has_ov = _limits(p)
    n = len(h_cur)
    counts[:] = fixed[k]
    counts[ON] += n_off  # the hosts left out, as `scan._scan` counts them
    counts[EXCLUDED] += n - n_cand - n_off
    src = V[3][vm]
    if src >= 0 and not H[0][src]:  # the source is never "not on"
        counts[ON] -= 1
        counts[EXCLUDED] += 1
    for g in range(1, GROUPS):
        cpu = _over(tau[k, g], ids[k, g], size[k, g], d, margin, p[P_CPU_OC], tol, h_cur,
                    h_cpu)
        counts[CPU] += cpu
        counts[LATER[g]] += size[k, g] - cpu
    cpu = _over(tau[k, 0], ids[k, 0], size[k, 0], d, margin, p[P_CPU_OC], tol, h_cur, h_cpu)
    counts[CPU] += cpu
    left = size[k, 0] - cpu
    if has_ov and lim_ov <= lim_cpu:  # what "CPU full" rejects, "would overload" does too
        limit = p[P_CAP_AFTER] if not math.isnan(p[P_CAP_AFTER]) else p[P_THRESHOLD]
        ov = _over(tau_ov[k], ids_ov[k], n_ov[k], d, margin, limit, tol, h_cur, h_cpu) - cpu
        counts[OVERLOAD] += ov
        left -= ov
    return bool(left == 0)
