"""What the overload detectors read, prepared in numpy: the valid history length per host and
LR's regression lines.

The detectors themselves are compiled, one implementation each (`working.host_over` on a host
as it is, `scan._scan` on a host with the VM added): THR sustained over a window, and Beloglazov
& Buyya's (CCPE 2012) adaptive IQR, MAD and LR as CloudSim 3.0.3 codes them, fallbacks
included. Their readable reference is the table of hand-computed cases in
tests/core/test_detectors.py, run against that compiled code.
"""

from __future__ import annotations

import numpy as np

from ulm.arrays import F64, I64

MAX_HISTORY = 30  # CloudSim's PowerVm.HISTORY_LENGTH; more would not change a 10-point LR
LR_POINTS = 10  # CloudSim fits the 10 newest samples "to be responsive enough"


def valid_length(history: F64) -> I64:
    """Samples from the newest back to the oldest non-zero one (CloudSim's `trimZeroTail`)."""
    nz = np.abs(history) > 1e-12  # float residue of removing a VM is not a sample
    width = history.shape[1]
    first = np.where(nz.any(axis=1), nz.argmax(axis=1), width)
    return np.asarray(np.minimum(width - first, MAX_HISTORY).astype(np.int64))


def lr_lines(history: F64) -> F64:
    """n x 2: (mean, slope) of the OLS line through each row's 10 newest samples (x = 1..10).

    `mean + slope * (10 + horizon - 5.5)` is LR's prediction; lines add up like the data.
    """
    hist = history[:, -LR_POINTS:]
    if hist.shape[1] < LR_POINTS:
        hist = np.pad(hist, ((0, 0), (LR_POINTS - hist.shape[1], 0)))
    x = np.arange(1, LR_POINTS + 1, dtype=np.float64)
    dx = x - x.mean()
    basis = np.stack([np.full(LR_POINTS, 1.0 / LR_POINTS), dx / (dx ** 2).sum()], axis=1)
    return np.asarray(hist @ basis)
