"""LR-MC's fit computes each candidate's QR from a shared prefix (`correlation.r2_each`'s
"trunk"): every R^2 and every error bound must be the one the candidate's own QR gives, to the
last bit, so that `mc` chooses exactly what it chose before. `_per_candidate` is that QR, one
whole design per candidate, and `_whole_condition` the condition estimate, as they were
before the trunk."""

from __future__ import annotations

import math

import numpy as np

from ulm.jit import numba
from ulm.scheduler import correlation
from ulm.scheduler.correlation import r2_each


@numba.njit()
def _whole_condition(r: np.ndarray) -> float:
    """`correlation._condition` before R^-1 was kept transposed."""
    k = r.shape[0]
    inv = np.zeros((k, k))
    for j in range(k):  # column j of R^-1: back substitution on e_j
        if r[j, j] == 0.0:
            return np.inf
        inv[j, j] = 1.0 / r[j, j]
        for i in range(j - 1, -1, -1):
            s = 0.0
            for m in range(i + 1, j + 1):
                s += r[i, m] * inv[m, j]
            inv[i, j] = -s / r[i, i]
    fr, fi = 0.0, 0.0
    for i in range(k):
        for j in range(i, k):
            fr += r[i, j] * r[i, j]
            fi += inv[i, j] * inv[i, j]
    return math.sqrt(fr) * math.sqrt(fi)


@numba.njit()
def _per_candidate(data: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row index `c` in `rows`: R^2 of the OLS fit of `data[c]` on an intercept and
    the other rows of `data` (k VMs x n samples, n > k), and a bound on how far numpy's
    `lstsq`-based R^2 and this one may be from the exact value (inf: not decided here)."""
    k, n = data.shape
    r2 = np.zeros(len(rows))
    err = np.full(len(rows), np.inf)
    a = np.empty((n, k + 1))
    r = np.zeros((k, k))
    for t in range(len(rows)):
        c = rows[t]
        col = 1
        for i in range(n):
            a[i, 0] = 1.0
        for m in range(k):
            if m != c:
                for i in range(n):
                    a[i, col] = data[m, i]
                col += 1
        mean, ysq = 0.0, 0.0
        for i in range(n):
            a[i, k] = data[c, i]
            mean += data[c, i]
            ysq += data[c, i] * data[c, i]
        mean /= n
        tss = 0.0
        for i in range(n):
            tss += (data[c, i] - mean) ** 2
        if not (math.isfinite(ysq) and tss > correlation.MIN_VARIANCE * ysq):
            continue
        ok = True
        for j in range(k):  # Householder on column j, applied to the columns after it
            norm = 0.0
            for i in range(j, n):
                norm += a[i, j] * a[i, j]
            norm = math.sqrt(norm)
            if norm == 0.0:
                ok = False
                break
            alpha = -norm if a[j, j] >= 0 else norm
            v0 = a[j, j] - alpha
            vsq = v0 * v0
            for i in range(j + 1, n):
                vsq += a[i, j] * a[i, j]
            if vsq == 0.0:
                ok = False
                break
            for m in range(j + 1, k + 1):
                dot = v0 * a[j, m]
                for i in range(j + 1, n):
                    dot += a[i, j] * a[i, m]
                f = 2.0 * dot / vsq
                a[j, m] -= f * v0
                for i in range(j + 1, n):
                    a[i, m] -= f * a[i, j]
            a[j, j] = alpha
            for m in range(j, k):
                r[j, m] = a[j, m]
        if not ok:
            continue
        rss = 0.0
        for i in range(k, n):
            rss += a[i, k] * a[i, k]
        cond = _whole_condition(r)
        if not cond < correlation.MAX_CONDITION:
            continue
        r2[t] = 1.0 - rss / tss
        err[t] = correlation.SLACK * n * correlation.EPS * cond * (ysq / tss) + 1e-14
    return r2, err



def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.tobytes() == b.tobytes()


def _cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    out = []
    for trial in range(300):
        k = int(rng.integers(2, 30))
        n = int(rng.integers(k + 1, 31))
        base = rng.random(n)
        data = (rng.random((k, n)) * 0.3 + np.outer(rng.random(k), base)) * 2500.0
        kind = trial % 6
        if kind == 1:  # nearly collinear pair
            data[k - 1] = data[0] * 0.5 + 1e-9 * rng.random(n)
        elif kind == 2:  # a flat history (skipped: no variance)
            data[int(rng.integers(k))] = 1000.0
        elif kind == 3:  # a VM at zero: the trunk's pivot is zero, later candidates fail
            data[int(rng.integers(k))] = 0.0
        elif kind == 4:  # exactly collinear: a zero pivot inside a candidate's own steps
            data[k - 1] = 2.0 * data[k // 2]
        elif kind == 5:  # small integers: many exact ties
            data = rng.integers(0, 4, (k, n)).astype(np.float64)
        every = np.arange(k, dtype=np.int64)
        some = np.sort(rng.choice(k, int(rng.integers(1, k + 1)), replace=False)).astype(np.int64)
        out += [(data, every), (data, some)]
    return out


def test_trunk_is_each_candidates_own_qr_bit_for_bit() -> None:
    decided_somewhere = skipped_somewhere = 0
    for data, rows in _cases():
        r2, err = r2_each(data, rows)
        old_r2, old_err = _per_candidate(data, rows)
        assert _same(r2, old_r2) and _same(err, old_err)
        decided_somewhere += int(np.isfinite(err).sum())
        skipped_somewhere += int((~np.isfinite(err)).sum())
    assert decided_somewhere > 1000 and skipped_somewhere > 50  # both paths were exercised


def test_rows_out_of_order_start_the_trunk_afresh() -> None:
    data = np.random.default_rng(3).random((6, 20)) * 100.0
    rows = np.array([4, 1, 5, 0], np.int64)
    r2, err = r2_each(data, rows)
    old_r2, old_err = _per_candidate(data, rows)
    assert _same(r2, old_r2) and _same(err, old_err)
