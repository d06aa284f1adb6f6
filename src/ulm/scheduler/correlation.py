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
    """For each row index `c` in `rows` (ascending): R^2 of the OLS fit of `data[c]` on an
    intercept and the other rows of `data` (k VMs x n samples, n > k), and a bound on how far
    numpy's `lstsq`-based R^2 and this one may be from the exact value (inf: not decided here).

    Candidate c's design is [1, data[0], ..., data[c-1], data[c+1], ...] with data[c] as the
    right-hand side. Householder QR goes column by column and a reflection changes each later
    column on its own, so the first c + 1 reflections of that design are those of [1, data[0],
    data[1], ...] up to data[c-1], for every c: they are computed once (the "trunk", on all
    rows of `data`) and each candidate goes on from there with its own columns. Every number
    is the one the QR of the candidate's own design computes, in the same order of
    operations (tests/scheduler/test_correlation_trunk.py holds it to that QR, bit for bit);
    only the repeated prefix is gone. Columns are stored as rows (contiguous)."""
    k, n = data.shape
    r2 = np.zeros(len(rows))
    err = np.full(len(rows), np.inf)
    trunk = np.empty((k + 1, n))  # trunk[0]: the intercept; trunk[1 + m]: data[m]
    r_trunk = np.zeros((k, k + 1))  # row j of R after trunk step j, by trunk column
    b = np.empty((k + 1, n))  # a candidate's columns from its first own step on
    r = np.zeros((k, k))
    done = k + 2  # trunk steps applied (none yet: the trunk is filled below)
    trunk_ok = True
    for t in range(len(rows)):
        c = rows[t]
        if done > c + 1:  # the first candidate (or rows out of order): the trunk afresh
            for i in range(n):
                trunk[0, i] = 1.0
            for m in range(k):
                for i in range(n):
                    trunk[1 + m, i] = data[m, i]
            done, trunk_ok = 0, True
        while trunk_ok and done < c + 1:  # the reflections of the intercept and data[:c]
            trunk_ok = _reflect(trunk, done, done + 1, k + 1, n, r_trunk[done])
            done += 1
        mean, ysq = 0.0, 0.0
        for i in range(n):
            mean += data[c, i]
            ysq += data[c, i] * data[c, i]
        mean /= n
        tss = 0.0
        for i in range(n):
            tss += (data[c, i] - mean) ** 2
        if not (math.isfinite(ysq) and tss > MIN_VARIANCE * ysq) or not trunk_ok:
            continue
        # the candidate's columns c + 1 .. k - 1 (data[c+1:]) and k (data[c]), as the trunk
        # left them after its first c + 1 steps
        for col in range(c + 1, k):
            b[col] = trunk[col + 1]
        b[k] = trunk[c + 1]
        for j in range(c + 1):
            for col in range(j, k):
                r[j, col] = r_trunk[j, col if col <= c else col + 1]
        ok = True
        for j in range(c + 1, k):
            if not _reflect(b, j, j + 1, k + 1, n, r[j]):
                ok = False
                break
        if not ok:
            continue
        rss = 0.0
        for i in range(k, n):
            rss += b[k, i] * b[k, i]
        cond = _condition(r)
        if not cond < MAX_CONDITION:
            continue
        r2[t] = 1.0 - rss / tss
        err[t] = SLACK * n * EPS * cond * (ysq / tss) + 1e-14
    return r2, err


@numba.njit(cache=True)
def _reflect(a: np.ndarray, j: int, first: int, last: int, n: int, r_row: np.ndarray) -> bool:
    """Householder step j on the columns `a[j]` (the pivot) and `a[first:last]` (stored as
    rows): the reflection that zeroes the pivot below its row j, applied to those columns;
    row j of R into `r_row` (by the same column index, from j on). False, and nothing
    reflected, when the pivot is zero from row j down (a rank-deficient design)."""
    norm = 0.0
    for i in range(j, n):
        norm += a[j, i] * a[j, i]
    norm = math.sqrt(norm)
    if norm == 0.0:
        return False
    alpha = -norm if a[j, j] >= 0 else norm
    v0 = a[j, j] - alpha
    vsq = v0 * v0
    for i in range(j + 1, n):
        vsq += a[j, i] * a[j, i]
    if vsq == 0.0:
        return False
    for m in range(first, last):
        dot = v0 * a[m, j]
        for i in range(j + 1, n):
            dot += a[j, i] * a[m, i]
        f = 2.0 * dot / vsq
        a[m, j] -= f * v0
        for i in range(j + 1, n):
            a[m, i] -= f * a[j, i]
    a[j, j] = alpha
    r_row[j] = alpha
    for m in range(first, min(last, len(r_row))):
        r_row[m] = a[m, j]
    return True


@numba.njit(cache=True)
def _condition(r: np.ndarray) -> float:
    """||R||_F x ||R^-1||_F of the upper triangle `r`: at least its 2-norm condition.
    R^-1 is kept transposed (`inv_t[j]` is its column j), so that back substitution reads
    both operands in memory order; the sums are taken in the same order as before."""
    k = r.shape[0]
    inv_t = np.zeros((k, k))
    for j in range(k):  # column j of R^-1: back substitution on e_j
        if r[j, j] == 0.0:
            return np.inf
        inv_t[j, j] = 1.0 / r[j, j]
        for i in range(j - 1, -1, -1):
            s = 0.0
            for m in range(i + 1, j + 1):
                s += r[i, m] * inv_t[j, m]
            inv_t[j, i] = -s / r[i, i]
    fr, fi = 0.0, 0.0
    for i in range(k):
        for j in range(i, k):
            fr += r[i, j] * r[i, j]
            fi += inv_t[j, i] * inv_t[j, i]
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
