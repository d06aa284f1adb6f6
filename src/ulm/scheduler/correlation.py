"""Maximum correlation (`selection.mc`) compiled: the R^2 of each candidate VM's history
regressed on its neighbours', with a bound on its rounding error.

`mc` took numpy's `lstsq` (LAPACK's SVD solver, ~0.2 ms a call with numpy's overhead) once per
candidate VM: an LR-MC day made ~110,000 calls, ten times an LR-MMT day's time. This fits the
same least squares by Householder QR in machine code. Its R^2 is not numpy's to the last bit
(another algorithm rounds differently), so `mc` uses it only to decide: when the best
candidate leads the second by more than both their error bounds, numpy's R^2 would rank them
the same (each is within its bound of the exact value); otherwise (near ties, such as the two
VMs of a two-VM host, whose R^2 are equal in exact arithmetic; a fit that is nearly singular;
a history that is nearly constant) `mc` runs numpy's `lstsq` as before. So the choice is
numpy's; only the time changes.
"""

from __future__ import annotations

import math

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)

EPS = 2.220446049250313e-16
#: Slack on the first-order error estimate (eps x condition x |y|^2 / TSS per sample): the
#: estimate leaves out constant factors of both algorithms, and a wrong "decided" would change
#: a plan, while a needless fall-back only costs the old time.
SLACK = 1e3
#: A fit is left to numpy when its design is this ill-conditioned, or when the history's
#: variance is this small a share of its square (R^2 is then mostly rounding, in numpy too).
MAX_CONDITION = 1e8
MIN_VARIANCE = 1e-8


@numba.njit(cache=True)
def r2_each(data: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        if not (math.isfinite(ysq) and tss > MIN_VARIANCE * ysq):
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
        cond = _condition(r)
        if not cond < MAX_CONDITION:
            continue
        r2[t] = 1.0 - rss / tss
        err[t] = SLACK * n * EPS * cond * (ysq / tss) + 1e-14
    return r2, err


@numba.njit(cache=True)
def _condition(r: np.ndarray) -> float:
    """||R||_F x ||R^-1||_F of the upper triangle `r`: at least its 2-norm condition."""
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


def decided(r2: np.ndarray, err: np.ndarray) -> int:
    """The index of the best R^2 if it leads every other by more than both their bounds
    (then numpy's R^2 ranks it first too), else -1."""
    if len(r2) == 0 or not np.isfinite(err).all():
        return -1
    best = int(np.argmax(r2))
    others = np.arange(len(r2)) != best
    if not others.any():
        return best
    return best if bool((r2[best] - err[best] > r2[others] + err[others]).all()) else -1
