"""The working state's changes and the overload detector on it, compiled (see `scan`).

`State` (state.py) owns the arrays; these functions are its `remove`/`add` and the detector that
relief asks after every VM that leaves a host. Compiled because relief and drains call them
tens of thousands of times a simulated day, and the loops in `loops.py` call them without
leaving machine code.
"""

from __future__ import annotations

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler.limits import exceeds
from ulm.scheduler.scan import (
    CPU_NOW,
    DEMAND,
    LEN,
    MEM,
    MEM_USE,
    P_DETECTOR,
    P_FALLBACK,
    P_MIN_IQR,
    P_SAFETY,
    P_SUSTAIN,
    P_THRESHOLD,
    P_TOLERANCE,
    P_WINDOW,
    RAM,
    _lr_over,
)
from ulm.scheduler.spread import MAX_HISTORY, _decided, _spread, _window_range


@numba.njit(cache=True)
def host_over(h: int, p: np.ndarray, S: tuple, h_cpu: np.ndarray) -> bool:  # type: ignore[type-arg]
    """The policy's CPU overload detector on host `h` as it is in the working state
    (the detector tables of tests/core/test_detectors.py; LR from the state's lines). Every
    comparison is `exceeds`, the one placement makes: a host placement filled to a limit is
    not over it here."""
    h_cur, h_hist, h_len, h_lr, h_biggest = S[0], S[1], S[5], S[6], S[7]
    detector = int(p[P_DETECTOR])
    tol = p[P_TOLERANCE]
    cap = h_cpu[h]
    used = h_cur[h]
    length = h_len[h]
    if detector == 0:
        return False
    if detector == 2:
        return _lr_over(used, length, h_lr[h, 0], h_lr[h, 1], h_biggest[h], 0.0, cap, p)
    width = min(h_hist.shape[1], MAX_HISTORY)
    start = h_hist.shape[1] - width
    if detector == 1:  # at least `sustain` of the last `window` samples, and now
        threshold, sustain = p[P_THRESHOLD], int(p[P_SUSTAIN])
        now = exceeds(used, cap, threshold, tol)
        if sustain <= 1 or not now:
            return bool(now)
        win = min(int(p[P_WINDOW]), width)
        first_valid = win - max(length, 1)
        over = 0
        for k in range(max(first_valid, 0), win):
            value = used if k == win - 1 else h_hist[h, start + width - win + k]
            if exceeds(value, cap, threshold, tol):
                over += 1
        return over >= sustain
    if length >= p[P_MIN_IQR]:  # IQR / MAD
        low, high, finite = _window_range(h_hist[h], h_hist[h, :0], start, width, length,
                                          cap)
        verdict = _decided(used, cap, low, high, finite, length, width, detector,
                           p[P_SAFETY], tol)
        if verdict >= 0:
            return verdict == 1
        row = np.empty(width)
        for k in range(width):
            row[k] = h_hist[h, start + k] / cap
        limit = 1.0 - p[P_SAFETY] * _spread(row, length, detector)
        return bool(exceeds(used, cap, limit, tol))
    return bool(exceeds(used, cap, p[P_FALLBACK], tol))


@numba.njit(cache=True)
def hosts_over(hosts: np.ndarray, p: np.ndarray, S: tuple,  # type: ignore[type-arg]
               h_cpu: np.ndarray) -> np.ndarray:
    out = np.zeros(len(hosts), np.bool_)
    for i in range(len(hosts)):
        out[i] = host_over(hosts[i], p, S, h_cpu)
    return out


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
    h_cur, h_hist, h_mem, h_count, _, h_len, h_lr, _, vm_host, h_mem_use = S
    h = vm_host[vm]
    h_mem_use[h] -= vm_num[vm, MEM_USE]
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
    h_cur, h_hist, h_mem, h_count, _, h_len, h_lr, h_biggest, vm_host, h_mem_use = S
    h_mem_use[host] += vm_num[vm, MEM_USE]
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


@numba.njit(cache=True)
def save_row(h: int, S: tuple, into: np.ndarray, hist: np.ndarray) -> None:  # type: ignore[type-arg]
    """Host `h`'s part of the working state, to put back exactly with `restore_row` (an undone
    move must leave no float residue: a - b + b is not always a)."""
    h_cur, h_hist, h_mem, h_count, _, h_len, h_lr, h_biggest, _, h_mem_use = S
    into[0], into[1], into[2], into[3], into[4] = h_cur[h], h_mem[h], h_count[h], h_len[h], \
        h_biggest[h]
    into[7] = h_mem_use[h]
    if h_lr.shape[0] > 0:
        into[5], into[6] = h_lr[h, 0], h_lr[h, 1]
    hist[:] = h_hist[h]


@numba.njit(cache=True)
def restore_row(h: int, S: tuple, saved: np.ndarray, hist: np.ndarray) -> None:  # type: ignore[type-arg]
    h_cur, h_hist, h_mem, h_count, _, h_len, h_lr, h_biggest, _, h_mem_use = S
    h_cur[h], h_mem[h], h_count[h], h_len[h] = saved[0], saved[1], int(saved[2]), int(saved[3])
    h_biggest[h], h_mem_use[h] = saved[4], saved[7]
    if h_lr.shape[0] > 0:
        h_lr[h, 0], h_lr[h, 1] = saved[5], saved[6]
    h_hist[h] = hist


@numba.njit(cache=True)
def by_host(vm_host: np.ndarray, n_h: int) -> tuple[np.ndarray, np.ndarray]:
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
