"""The one comparison of a host's load with a limit: placement and detection share it.

Placement asks "may this host take the VM and stay within the limit?", the detectors ask "is
this host over the limit?" — about the same host, one round apart. If the two questions are
not the same comparison, a VM placed exactly at the limit is called overloaded the next round
and moved again: a ping-pong. Exactly at the limit is common, not rare: loads are nice numbers
(multiples of 1/32 of a host, 0.1 cores, integer percents of MIPS), and their sum in floating
point lands an ulp above or below the limit depending on the order of the additions (a working
state adds VM by VM, the next round's snapshot sums per host in VM order): 24 cores of 32 are
24.000000000000004 / 32 > 0.75 after one order and exactly 0.75 after another. So every
comparison of a load with a limit (CPU threshold and the adaptive detectors' thresholds, the
memory-pressure threshold, the CPU and memory capacity with overcommit, the policy's cap on
the destination, balancing's "too hot") is `exceeds`, with the same `TOLERANCE`, in the
compiled kernels and in the numpy and Python code alike (`exceeds_each` for arrays).
"""

from __future__ import annotations

import numpy as np

from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.policy import Policy

#: How far above a limit a load may be and still count as at it, as a fraction of the host's
#: capacity. Far above the rounding of summing a few hundred loads (~1e-13 of a host) and far
#: below anything that matters to a host (1e-9 of a 64-core host is 64 ns of CPU a second), so
#: a load that is at the limit up to rounding is at it, whatever order it was summed in.
TOLERANCE = 1e-9

#: CloudSim 3.0.3 compares utilisation with its thresholds exactly (`utilization >
#: threshold`, in its detector and, through `isHostOverUtilizedAfterAllocation`, in its
#: placement: the same comparison on both sides). `--cloudsim-compat` reproduces that, so the
#: compat tables keep comparing like CloudSim; every other policy uses `TOLERANCE`.
CLOUDSIM_TOLERANCE = 0.0


# numpy's error model: a host without memory (capacity 0) holds 0 MiB (0 / 0 is NaN, not
# over) and nothing more (x / 0 is inf, over), where Python's would raise.
@numba.njit(cache=True, error_model="numpy")
def exceeds(used: float, cap: float, limit: float, tol: float) -> bool:
    """`used` is above `limit` times `cap` beyond rounding: "over the limit". Placement
    accepts exactly where this is false, and the detectors flag exactly where it is true.
    A fraction first (`used / cap`), as the detectors always computed utilisation."""
    return used / cap > limit + tol


@numba.njit(cache=True)
def exceeds_each(used: np.ndarray, cap: np.ndarray, limit: np.ndarray, tol: float
                 ) -> np.ndarray:
    """`exceeds` element by element, for the numpy code (arrays of one length)."""
    out = np.zeros(len(used), np.bool_)
    for i in range(len(used)):
        out[i] = exceeds(used[i], cap[i], limit[i], tol)
    return out


def tolerance(policy: Policy) -> float:
    """The tolerance of `exceeds` under this policy (see `CLOUDSIM_TOLERANCE`)."""
    return CLOUDSIM_TOLERANCE if policy.compat == "cloudsim" else TOLERANCE
