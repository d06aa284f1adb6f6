"""One table per detector: the verdict for hand-computed histories, from the compiled code the
scheduler runs (`working.hosts_over`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import policy
from ulm.policy import Policy
from ulm.scheduler import scan, spread, working
from ulm.scheduler.detectors import lr_lines, valid_length
from ulm.scheduler.state import _scan_params, nan_percentile


def production_verdict(history: list[float], pol: Policy) -> bool:
    """The verdict the scheduler acts on (`working.hosts_over`, compiled) for one host of
    capacity 1 with this history (the newest sample is its load now), its biggest VM small
    enough to migrate within one interval (LR's horizon 1)."""
    hist = np.array([history], dtype=np.float64)
    length = valid_length(hist)
    lines = lr_lines(hist) if pol.overload.detector == "lr" else np.zeros((0, 2))
    got = working.hosts_over(np.arange(1), _scan_params(pol),
                             _state(hist, length, lines, np.ones(1)), np.ones(1))
    return bool(got[0])


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([0.9, 0.9, 0.5, 0.9], True),  # 3 of 4 above, and above now
        ([0.5, 0.5, 0.9, 0.9], False),  # only 2 of 4
        ([0.5, 0.5, 0.5, 0.95], False),  # a blip
        ([0.9, 0.9, 0.9, 0.5], False),  # was hot, is fine now
        ([0.76, 0.76, 0.76, 0.76], True),
        ([0.75, 0.75, 0.75, 0.75], False),  # at the threshold is not above it
    ],
)
def test_sustained_threshold(history: list[float], expected: bool) -> None:
    pol = policy("[overload]\nthreshold = 0.75\nsustain = 3\nwindow = 4\n")
    assert production_verdict(history, pol) is expected


def test_sustain_needs_enough_samples_on_a_young_host() -> None:
    young = [0.0, 0.0, 0.0, 0.95]
    assert not production_verdict(young, policy("[overload]\nthreshold = 0.75\nsustain = 3\n"
                                                "window = 4\n"))
    assert production_verdict(young, policy("[overload]\nthreshold = 0.75\nsustain = 1\n"
                                            "window = 1\n"))


def test_valid_length_trims_the_zero_tail_only() -> None:
    hist = np.array([[0, 0, 0.5, 0, 0.7], [0, 0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4, 0.5]])
    assert valid_length(hist).tolist() == [3, 0, 5]


def test_iqr_uses_cloudsims_quartile_index() -> None:
    # n = 12: q1 index round(3.25)-1 = 2, q3 index round(9.75)-1 = 9 of the sorted data.
    data = [0.05 * k for k in range(1, 13)]
    rng = np.random.default_rng(1)
    shuffled = np.array(rng.permutation(data))
    assert spread._spread(shuffled, 12, scan.DETECTOR["iqr"]) == pytest.approx(data[9] - data[2])


def test_mad_is_the_median_absolute_deviation() -> None:
    data = np.array([0.2, 0.4, 0.4, 0.5, 0.9])  # median 0.4, deviations 0.2 0 0 0.1 0.5 -> 0.1
    assert spread._spread(data, 5, scan.DETECTOR["mad"]) == pytest.approx(0.1)


def test_lr_predicts_a_straight_line_exactly() -> None:
    line = [0.5 + 0.04 * k for k in range(10)]  # x = 1..10 -> 0.5 .. 0.86, at x = 11: 0.90
    mean, slope = lr_lines(np.array([line]))[0]
    for horizon, want in ((1.0, 0.90), (3.0, 0.98)):
        assert mean + slope * (10 + horizon - 5.5) == pytest.approx(want)


@pytest.mark.parametrize(
    ("detector", "history", "expected"),
    [
        # LR: rising to 0.9 next interval, x1.2 safety -> 1.08 >= 1: overloaded
        ("lr", [0.5 + 0.04 * k for k in range(10)], True),
        ("lr", [0.5] * 10, False),  # flat 0.5 x 1.2 = 0.6
        ("lr", [0.8] * 9, True),  # 9 samples: fallback threshold 0.7
        ("lr", [0.6] * 9, False),
        # IQR with s = 1.5 on a calm history: threshold near 1, 0.9 is fine
        ("iqr", [0.9] * 12, False),
        # IQR on a wild history: threshold 1 - 1.5 * IQR is low, 0.6 now is overloaded
        ("iqr", [0.1, 0.9] * 6 + [0.6], True),
        ("iqr", [0.8] * 11, True),  # 11 samples: fallback 0.7
        ("mad", [0.85] * 12, False),
        ("mad", [0.2, 0.9, 0.2, 0.9, 0.2, 0.9, 0.2, 0.9, 0.2, 0.9, 0.2, 0.9, 0.6], True),
        ("none", [1.0] * 12, False),
    ],
)
def test_adaptive_detectors(detector: str, history: list[float], expected: bool) -> None:
    safety = {"lr": 1.2, "iqr": 1.5, "mad": 2.5, "none": 1.0}[detector]
    pol = policy(f'[overload]\ndetector = "{detector}"\nsafety = {safety}\n')
    assert production_verdict(history, pol) is expected


def test_detectors_are_vectorised_over_hosts() -> None:
    rows = np.array([[0.5] * 12, [0.1, 0.9] * 6, [0.95] * 12])
    pol = policy('[overload]\ndetector = "iqr"\n')
    got = working.hosts_over(np.arange(3), _scan_params(pol),
                             _state(rows, valid_length(rows), np.zeros((0, 2)), np.zeros(3)),
                             np.ones(3))
    assert got.tolist() == [False, True, False]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 10, 30]), st.floats(0.5, 2.0))
def test_lr_from_summed_lines_matches_the_regression_of_the_sum(seed: int, width: int,
                                                                 safety: float) -> None:
    """The scheduler tests LR from OLS lines (State.host_lr), "host + VM" as the sum of the two
    lines (the compiled `working.host_over`, which placement shares): it must give the same
    verdict as the regression over the summed history, fallback included."""
    rng = np.random.default_rng(seed)
    n, cap = 40, 1000.0
    host = rng.uniform(0, 800, (n, width)) * (rng.random((n, 1)) < 0.8)
    vm = rng.uniform(0, 300, (1, width))
    horizon = rng.integers(0, 4, n).astype(np.float64)
    pol = policy(f"[overload]\ndetector = \"lr\"\nsafety = {safety}\n")
    rule = pol.overload
    summed = host + vm
    current = summed[:, -1] / cap
    length = np.maximum(valid_length(host), valid_length(vm)[0])
    # the oracle: numpy's least squares over the summed history's 10 newest samples
    newest = np.pad(summed, ((0, 0), (max(10 - width, 0), 0)))[:, -10:] / cap
    slope, intercept = np.polyfit(np.arange(1, 11.0), newest.T, 1)
    predicted = intercept + slope * (10 + horizon)
    want = np.where(length >= rule.min_history_lr, safety * predicted > 1.0,
                    current > rule.fallback_threshold)
    lines = lr_lines(host) + lr_lines(vm)[0]
    params = _scan_params(pol)
    biggest = horizon * rule.migration_mib_per_s * rule.migration_interval_s  # -> horizon
    got = working.hosts_over(np.arange(n), params, _state(summed, length, lines, biggest),
                          np.full(n, cap))
    near = np.where(length >= rule.min_history_lr, np.abs(safety * predicted - 1.0),
                    np.abs(current - rule.fallback_threshold))
    decided = near > 1e-9  # a verdict exactly at the line may round either way
    assert (got == want)[decided].all()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.floats(0, 100))
def test_percentile_demand_is_numpys_nanpercentile_to_the_bit(seed: int, width: int,
                                                              q: float) -> None:
    rng = np.random.default_rng(seed)
    win = rng.random((30, width)) * 1000
    win[rng.random((30, width)) < 0.3] = np.nan
    win[:, -1] = rng.random(30)  # every row has a sample
    assert np.array_equal(nan_percentile(win, q), np.nanpercentile(win, q, axis=1))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 31))
def test_mad_median_is_numpys_nanmedian_to_the_bit(seed: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.random((25, width)) * rng.choice([1.0, 1e-3, 1e3])
    rows[rng.random((25, width)) < 0.4] = np.nan
    rows[:, -1] = rng.random(25)  # every row has a sample
    got = [spread._median(row[~np.isnan(row)].copy()) for row in rows]  # the compiled median
    assert np.array_equal(np.array(got), np.nanmedian(rows, axis=1))


def _state(hist: np.ndarray, length: np.ndarray, lines: np.ndarray, biggest: np.ndarray,
           ) -> tuple[np.ndarray, ...]:
    """The working-state tuple `scan` reads (see `State.S`) for hosts with these histories
    (in CPU units; the newest sample is the current load)."""
    n = len(hist)
    return (hist[:, -1].copy(), np.ascontiguousarray(hist), np.zeros(n),
            np.zeros(n, np.int64), np.zeros(n, np.int64), length.astype(np.int64), lines,
            biggest.astype(np.float64), np.zeros(0, np.int64), np.zeros(n))
