"""The IQR / MAD shortcut (`spread._decided`): where the window's range decides the verdict, it
is the verdict the full spread gives, to the bit (the compat and honest tables depend on it)."""

from __future__ import annotations

import numpy as np

from ulm.jit import numba
from ulm.scheduler.limits import exceeds
from ulm.scheduler.spread import _decided, _mad_bound, _median, _spread, _window_range


def test_shortcut_agrees_with_the_spread() -> None:
    rng = np.random.default_rng(7)
    decided = {0: 0, 1: 0}
    for trial in range(4000):
        width = 30
        length = int(rng.integers(1, width + 1))
        # loads near the limit and exact repeats (nice numbers), where rounding matters
        row = rng.choice([0.25, 0.5, 0.75, 0.8, 1.0 / 3], width) if trial % 2 else rng.random(width)
        row[: width - length] = 0.0
        detector = 3 if trial % 3 else 4
        safety = float(rng.choice([1.5, 2.5, 0.5]))
        cap = float(rng.choice([1860.0, 2660.0]))
        used = float(rng.random() * 1.2 * cap)
        window = row[width - length:]
        verdict = _decided(used, cap, float(window.min()), float(window.max()), True, length,
                           width, detector, safety, 0.0)
        full = exceeds(used, cap, 1.0 - safety * _spread(row.copy(), length, detector), 0.0)
        if verdict >= 0:
            assert (verdict == 1) == full, (row, length, detector, safety, used, cap)
            decided[verdict] += 1
    assert decided[0] > 0 and decided[1] > 0  # the shortcut is taken both ways


def test_shortcut_declines_what_it_cannot_decide() -> None:
    # not finite, an empty window, and IQR's upper quartile index past a one-sample window
    assert _decided(0.1, 1.0, 0.0, 0.1, False, 10, 30, 3, 1.5, 0.0) == -1
    assert _decided(0.1, 1.0, 0.0, 0.1, True, 0, 30, 4, 1.5, 0.0) == -1
    assert _decided(0.1, 1.0, 0.5, 0.5, True, 1, 30, 3, 1.5, 0.0) == -1


def _divided_range(h_row: np.ndarray, v_row: np.ndarray, length: int,
                   cap: float) -> tuple[float, float, bool]:
    """The window's range as the detectors took it before `_window_range`: every sample
    divided, then compared."""
    low, high, finite = np.inf, -np.inf, True
    width = len(h_row)
    for k in range(max(width - length, 0), width):
        x = float(((h_row[k] + v_row[k]) if len(v_row) else h_row[k]) / cap)
        finite = finite and bool(np.isfinite(x))
        low, high = min(low, x), max(high, x)
    return low, high, finite


def test_window_range_is_the_range_of_the_divided_samples() -> None:
    rng = np.random.default_rng(13)
    odd = [np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, -0.0]
    checked = {True: 0, False: 0}
    with np.errstate(all="ignore"):
        for trial in range(3000):
            width = 30
            length = int(rng.integers(0, width + 3))
            h_row = rng.random(width) * rng.choice([1.0, 2500.0, 1e300])
            v_row = rng.random(width) * 2500.0 if trial % 2 else np.zeros(0)
            if trial % 7 == 0:  # a non-finite or huge sample somewhere
                h_row[int(rng.integers(width))] = float(rng.choice(odd))
            # (a capacity of 0 raises ZeroDivisionError in the compiled code, before and after)
            cap = float(rng.choice([1860.0, 2660.0, 1e-300, -5.0, np.inf, np.nan]))
            low, high, finite = _window_range(h_row, v_row, 0, width, length, cap)
            want = _divided_range(h_row, v_row, length, cap)
            assert finite == want[2], (h_row, v_row, length, cap)
            if finite:  # what `_decided` reads (it declines a window that is not finite)
                assert (low, high) == want[:2], (h_row, v_row, length, cap)
            checked[finite] += 1
    assert checked[True] > 1000 and checked[False] > 100


@numba.njit()
def _two_sorts(row: np.ndarray, length: int) -> float:
    """MAD as `_spread` took it before `_mad_sorted`: sort for the median, then sort again."""
    sub = row[len(row) - length:].copy()
    med = _median(sub.copy())
    return _median(np.abs(sub - med))


def test_mad_with_one_sort_is_mad_with_two() -> None:
    rng = np.random.default_rng(17)
    for trial in range(5000):
        width = 30
        length = int(rng.integers(1, width + 1))
        kind = trial % 4
        if kind == 0:
            row = rng.random(width)
        elif kind == 1:  # nice numbers: ties, deviations equal on both sides of the median
            row = rng.choice([0.0, -0.0, 0.25, 0.5, 0.75, 1.0 / 3, 1.0], width)
        elif kind == 2:  # far apart magnitudes (rounding in the deviations)
            row = rng.random(width) * 10.0 ** rng.integers(-300, 300, width)
        else:  # not finite somewhere: the two-sort path, as before
            row = rng.random(width)
            row[int(rng.integers(width))] = float(rng.choice([np.nan, np.inf, -np.inf]))
        got = _spread(row.copy(), length, 4)
        want = _two_sorts(row.copy(), length)
        assert np.float64(got).tobytes() == np.float64(want).tobytes(), (row, length)


def test_mad_is_at_most_half_the_range() -> None:
    """`_mad_bound`, which lets the shortcut decide MAD hosts with half the range: it holds on
    every window, and it is tight (a window split evenly between two values reaches it)."""
    rng = np.random.default_rng(19)
    worst = 0.0
    for trial in range(20000):
        length = int(rng.integers(1, 31))
        kind = trial % 4
        if kind == 0:
            row = rng.random(length)
        elif kind == 1:  # two clusters: the MAD near half the range
            row = np.where(rng.random(length) < 0.5, 0.1, 0.9) + rng.random(length) * 1e-9
        elif kind == 2:  # nice numbers, ties
            row = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0 / 3, 1.0], length)
        else:  # magnitudes far apart
            row = rng.random(length) * 10.0 ** rng.integers(-200, 200, length)
        mad = _spread(row.copy(), length, 4)
        bound = _mad_bound(float(row.min()), float(row.max()))
        assert mad <= bound, (row, mad, bound)
        if row.max() > row.min():
            worst = max(worst, mad / (row.max() - row.min()))
    assert worst > 0.49  # half the range is reached, so the bound is no looser than it must be
