"""Overload detectors: is a host's CPU in trouble? Vectorised over many hosts at once.

Each detector sees a matrix of host utilisation histories (rows = hosts, fraction of capacity,
oldest first, newest last), the number of valid samples per row (`length`: CloudSim trims the
zero tail, a young host has fewer) and the current utilisation. The adaptive detectors are
Beloglazov & Buyya's (CCPE 2012) as CloudSim 3.0.3 codes them, fallbacks included. Every
verdict compares with `limits.exceeds`, the comparison placement makes (`tol`: see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.policy import Overload
from ulm.scheduler.limits import TOLERANCE, exceeds_each

MAX_HISTORY = 30  # CloudSim's PowerVm.HISTORY_LENGTH; more would not change a 10-point LR
LR_POINTS = 10  # CloudSim fits the 10 newest samples "to be responsive enough"


@dataclass(frozen=True, slots=True)
class HostLoad:
    """What the detectors read for n hosts."""

    history: F64  # n x W, fraction of capacity, oldest first
    length: I64  # valid samples per row, counted from the newest
    current: F64  # n, fraction of capacity now
    horizon: F64  # n, migration intervals ahead (LR), ceil(max VM migration time / interval)


def valid_length(history: F64) -> I64:
    """Samples from the newest back to the oldest non-zero one (CloudSim's `trimZeroTail`)."""
    nz = np.abs(history) > 1e-12  # float residue of removing a VM is not a sample
    width = history.shape[1]
    first = np.where(nz.any(axis=1), nz.argmax(axis=1), width)
    return np.asarray(np.minimum(width - first, MAX_HISTORY).astype(np.int64))


def above(fraction: F64, limit: F64 | float, tol: float = TOLERANCE) -> B:
    """`limits.exceeds` on fractions of capacity (any shape; `limit` one or per element)."""
    flat = np.ascontiguousarray(fraction, np.float64).ravel()
    lim = np.broadcast_to(np.asarray(limit, np.float64), np.shape(fraction)).ravel()
    return np.asarray(exceeds_each(flat, np.ones(len(flat)), np.ascontiguousarray(lim), tol)
                      .reshape(np.shape(fraction)))


def overloaded(load: HostLoad, rule: Overload, tol: float = TOLERANCE) -> B:
    """The policy's detector, with CloudSim's THR fallback where history is too short."""
    if rule.detector == "none":
        return np.zeros(len(load.current), np.bool_)
    if rule.detector == "threshold":
        return sustained_above(load, rule.threshold, rule.sustain, rule.window, tol)
    if rule.detector in ("lr", "lrr"):
        enough = load.length >= rule.min_history_lr
        verdict = above(rule.safety * lr_prediction(load), 1.0, tol)
    else:
        enough = load.length >= rule.min_history_iqr
        spread = iqr(load) if rule.detector == "iqr" else mad(load)
        verdict = above(load.current, 1.0 - rule.safety * spread, tol)
    fallback = above(load.current, rule.fallback_threshold, tol)
    return np.where(enough, verdict, fallback)


def sustained_above(load: HostLoad, threshold: float, sustain: int, window: int,
                    tol: float = TOLERANCE) -> B:
    """Overloaded iff at least `sustain` of the last `window` samples exceed the threshold.

    The newest sample is the current figure, so a blip that is over now but not sustained does
    not trigger; a host must also be over *now* (a load that already fell back needs no relief).
    """
    now = above(load.current, threshold, tol)
    if sustain <= 1:
        return now
    recent = load.history[:, -window:].copy()
    recent[:, -1] = load.current
    cols = np.arange(recent.shape[1])
    valid = cols[None, :] >= recent.shape[1] - np.maximum(load.length, 1)[:, None]
    over = above(recent, threshold, tol) & valid
    return np.asarray((over.sum(axis=1) >= sustain) & now)


def _newest(load: HostLoad) -> tuple[F64, B]:
    """The newest up-to-30 samples of each row, and which of them are valid."""
    hist = load.history[:, -MAX_HISTORY:]
    width = hist.shape[1]
    cols = np.arange(width)
    valid = cols[None, :] >= width - load.length[:, None]
    return hist, valid


def iqr(load: HostLoad) -> F64:
    """Interquartile range with CloudSim's quartile index `round(q(n+1)) - 1` over sorted data."""
    hist, valid = _newest(load)
    data = np.sort(np.where(valid, hist, np.inf), axis=1)
    n = np.maximum(load.length, 1)
    q1 = _java_round(0.25 * (n + 1)) - 1
    q3 = _java_round(0.75 * (n + 1)) - 1
    q1 = np.clip(q1, 0, data.shape[1] - 1)
    q3 = np.clip(q3, 0, data.shape[1] - 1)
    rows = np.arange(len(n))
    empty = load.length == 0
    upper = np.where(empty, 0.0, data[rows, q3])  # an empty row sorted to all +inf
    lower = np.where(empty, 0.0, data[rows, q1])
    return np.asarray(upper - lower)


def mad(load: HostLoad) -> F64:
    """Median absolute deviation from the median."""
    hist, valid = _newest(load)
    data = np.where(valid, hist, np.nan)
    rows_ok = load.length > 0
    out = np.zeros(len(load.length))
    if rows_ok.any():
        sub = data[rows_ok]
        med = nan_median(sub)
        out[rows_ok] = nan_median(np.abs(sub - med[:, None]))
    return out


def nan_median(rows: F64) -> F64:
    """`np.nanmedian(rows, axis=1)` for rows with at least one sample, bit for bit.

    numpy loops in Python over the rows when NaNs are present; MAD asks this for every
    candidate host of every VM placed, which made MAD-MMT the slowest policy by far.
    """
    data = np.sort(rows, axis=1)  # NaNs sort last
    n = (~np.isnan(rows)).sum(axis=1)
    index = np.arange(len(rows))
    hi = data[index, n // 2]
    lo = data[index, np.maximum((n - 1) // 2, 0)]
    return np.asarray(np.where(n % 2 == 1, hi, (lo + hi) / 2.0))


def lr_prediction(load: HostLoad) -> F64:
    """OLS line through the 10 newest samples (x = 1..10), read at 10 + horizon.

    An OLS prediction is linear in the data, so it is a dot product with fixed weights; that
    also makes "this host plus that VM" cheap to test for every candidate host.
    """
    hist = load.history[:, -LR_POINTS:]
    if hist.shape[1] < LR_POINTS:
        hist = np.pad(hist, ((0, 0), (LR_POINTS - hist.shape[1], 0)))
    horizon = load.horizon
    if len(horizon) and (horizon == horizon[0]).all():  # the usual case: one horizon
        return np.asarray(hist @ lr_weights(float(horizon[0])))
    out = np.zeros(hist.shape[0])
    for h in np.unique(horizon):
        rows = load.horizon == h
        out[rows] = hist[rows] @ lr_weights(float(h))
    return out


def lr_lines(history: F64) -> F64:
    """n x 2: (mean, slope) of the OLS line through each row's 10 newest samples (x = 1..10).

    `mean + slope * (10 + horizon - 5.5)` is `lr_prediction`; lines add up like the data.
    """
    hist = history[:, -LR_POINTS:]
    if hist.shape[1] < LR_POINTS:
        hist = np.pad(hist, ((0, 0), (LR_POINTS - hist.shape[1], 0)))
    x = np.arange(1, LR_POINTS + 1, dtype=np.float64)
    dx = x - x.mean()
    basis = np.stack([np.full(LR_POINTS, 1.0 / LR_POINTS), dx / (dx ** 2).sum()], axis=1)
    return np.asarray(hist @ basis)


@cache
def lr_weights(horizon: float) -> F64:
    x = np.arange(1, LR_POINTS + 1, dtype=np.float64)
    at = LR_POINTS + horizon
    xm = x.mean()
    # prediction = mean(y) + slope * (at - xm), slope = sum((x-xm) y) / sum((x-xm)^2)
    w = 1.0 / LR_POINTS + (x - xm) * (at - xm) / ((x - xm) ** 2).sum()
    w.flags.writeable = False
    return np.asarray(w)


def _java_round(x: F64 | I64) -> I64:
    return np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64)
