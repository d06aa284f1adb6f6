"""The IQR and MAD detectors' arithmetic, compiled: the spread of a window of samples, and
the shortcuts that decide a host from the window's range without computing it.

Placement (`scan._spread_over`) asks these about every candidate host, and relief's detector
(`working.host_over`) about every host a VM leaves; every function returns what the plain
sort-based computation returns, to the bit (tests/scheduler/test_spread_shortcut.py).
"""

from __future__ import annotations

import math

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.scheduler.limits import exceeds

MAX_HISTORY = 30


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
    if length >= 1 and np.isfinite(sub).all():
        return _mad_sorted(sub)
    med = _median(sub.copy())
    return _median(np.abs(sub - med))


@numba.njit(cache=True)
def _mad_sorted(values: np.ndarray) -> float:
    """`_median(abs(values - _median(values)))` for finite values (sorted in place), with
    one sort instead of two: once the values are sorted, their deviations from the median
    are two sorted runs (falling to the median's left, rising from it: x -> |x - med| is
    monotone on each side, in floating point too), so the middle deviations are found by
    merging the runs from the median outwards. The same numbers come out: the median of the
    same values, then the same deviations at the same ranks of their sorted order."""
    med = _median(values)  # sorts `values`
    n = len(values)
    right = 0
    while right < n and values[right] < med:
        right += 1
    left = right - 1  # values[:right] < med <= values[right:]
    lo, hi = 0.0, 0.0
    for rank in range(n // 2 + 1):  # the deviations of ranks 0 .. n // 2, smallest first
        if right >= n or (left >= 0 and abs(values[left] - med) <= abs(values[right] - med)):
            d = abs(values[left] - med)
            left -= 1
        else:
            d = abs(values[right] - med)
            right += 1
        if rank == max((n - 1) // 2, 0):
            lo = d
        hi = d
    return float(hi) if n % 2 == 1 else float((lo + hi) / 2.0)


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


@numba.njit(cache=True, inline="always")
def _decided(used: float, cap: float, low: float, high: float, finite: bool, length: int,
             width: int, detector: int, safety: float, tol: float) -> int:
    """The IQR / MAD verdict when the window's range alone decides it: 1 over, 0 not over,
    -1 undecided (then the spread is computed). Placement asks this for every candidate host
    and sorting 30 samples per host was most of an IQR or MAD day; most hosts are far from
    their limit either way. Exact, not an estimate: with finite samples the spread is between
    0 and `high - low` in floating point too (both quartiles, the median and every absolute
    deviation lie in [low, high], and rounding is monotone), so the limit 1 - safety x
    spread lies between 1 - safety x (high - low) and 1, and `exceeds` is monotone in the
    limit. IQR's quartile index must fall inside the window (else the spread reads an inf)."""
    if not finite or length < 1 or length > width or safety < 0:
        return -1
    if detector == 3:
        n = max(length, 1)
        if min(max(math.floor(0.75 * (n + 1) + 0.5) - 1, 0), width - 1) >= length:
            return -1
    if exceeds(used, cap, 1.0, tol):
        return 1
    spread = high - low
    if detector == 4:  # MAD: at most half the range (`_mad_bound`)
        spread = min(spread, _mad_bound(low, high))
    if not exceeds(used, cap, 1.0 - safety * spread, tol):
        return 0
    return -1


@numba.njit(cache=True, inline="always")
def _mad_bound(low: float, high: float) -> float:
    """An upper bound of the MAD `_spread` computes from finite samples in [low, high]:
    half the range, plus a margin. In exact arithmetic the MAD is at most (high - low) / 2:
    if the median m is in the lower half of the range, the samples up to the median (at least
    half of them, the one just above it too when the count is even, whose deviation is half
    the gap between the two middle samples) deviate by at most m - low <= (high - low) / 2;
    symmetrically in the upper half. In floating point the computed median lies between the
    two middle samples and is one rounding from their midpoint, each deviation and the
    average of the two middle deviations one rounding more; the margin (1e-12 relative to the
    range and to the samples' magnitude, 1e-300 absolute) covers these thousands of times."""
    return ((high - low) * 0.5 * (1.0 + 1e-12)
            + 1e-12 * max(abs(low), abs(high)) + 1e-300)


@numba.njit(cache=True, inline="always")
def _window_range(h_row: np.ndarray, v_row: np.ndarray, start: int, width: int, length: int,
                  cap: float) -> tuple[float, float, bool]:
    """The lowest and highest of the samples `_spread` reads, `(h_row + v_row) / cap` over
    the newest `length` of the window, and whether all are finite (`v_row` empty: the host's
    row alone). Placement asks this for every candidate host, and a division per sample was
    most of it: with a positive finite `cap`, x -> x / cap rounds monotonically, so the
    lowest and highest quotients are the quotients of the lowest and highest sums (and all
    quotients are finite when all sums and those two are), two divisions instead of 30.
    Otherwise every sample is divided, as `_spread` does."""
    low, high, finite = np.inf, -np.inf, True
    with_vm = len(v_row) > 0
    if cap > 0.0 and math.isfinite(cap):
        for k in range(max(width - length, 0), width):
            x = h_row[start + k] + v_row[start + k] if with_vm else h_row[start + k]
            finite = finite and math.isfinite(x)
            low, high = min(low, x), max(high, x)
        if finite and max(width - length, 0) < width:  # empty: inf, -inf, as before
            low, high = low / cap, high / cap
            finite = math.isfinite(low) and math.isfinite(high)
        return low, high, finite
    for k in range(max(width - length, 0), width):
        x = (h_row[start + k] + v_row[start + k] if with_vm else h_row[start + k]) / cap
        finite = finite and math.isfinite(x)
        low, high = min(low, x), max(high, x)
    return low, high, finite
