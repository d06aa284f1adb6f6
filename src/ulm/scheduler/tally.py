"""Per-host tallies of the VMs' columns for `State.of`, compiled.

`State.of` runs once per `schedule` call: 288 times a simulated day, where it was a quarter of
the scheduler's time in numpy (`np.maximum.at` and weighted `bincount` over 45,000 history
cells are slow per element). Each loop adds in the order numpy does, so the sums are the same
to the last bit.
"""

from __future__ import annotations

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler.scan import _interp
from ulm.scheduler.working import _row_length


@numba.njit(cache=True)
def sum_rows(rows: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """n x W: row i of `rows` added to row `at[i]` (skipped where negative), in order (what
    `bincount` does)."""
    out = np.zeros((n, rows.shape[1]))
    for i in range(len(at)):
        h = at[i]
        if h >= 0:
            for k in range(rows.shape[1]):
                out[h, k] += rows[i, k]
    return out


@numba.njit(cache=True)
def biggest(vm_host: np.ndarray, mem: np.ndarray, n: int) -> np.ndarray:
    """Per host: the largest `mem` of the VMs placed on it (0 if none)."""
    out = np.zeros(n)
    for i in range(len(vm_host)):
        h = vm_host[i]
        if h >= 0 and mem[i] > out[h]:
            out[h] = mem[i]
    return out


@numba.njit(cache=True)
def zero_nan(a: np.ndarray) -> np.ndarray:
    """`np.nan_to_num(a, nan=0.0)` for a matrix without infinities."""
    out = a.copy()
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            if np.isnan(out[i, k]):
                out[i, k] = 0.0
    return out


@numba.njit(cache=True)
def valid_lengths(history: np.ndarray) -> np.ndarray:
    """`detectors.valid_length`, row by row."""
    out = np.zeros(history.shape[0], np.int64)
    for i in range(history.shape[0]):
        out[i] = _row_length(history[i])
    return out


@numba.njit(cache=True)
def watts(util: np.ndarray, host_curve: np.ndarray, curve_x: np.ndarray, curve_w: np.ndarray,
          curve_len: np.ndarray) -> np.ndarray:
    """Power of every host at CPU fraction `util` (0 without a power model): `np.interp`."""
    out = np.zeros(len(util))
    for h in range(len(util)):
        c = host_curve[h]
        if c >= 0:
            out[h] = _interp(util[h], c, curve_x, curve_w, curve_len[c] - 1)
    return out
