"""Power draw of SPECpower curves, vectorised over hosts: watts at 0, 10, ..., 100 % CPU,
linear in between (CloudSim's `PowerModelSpecPower`)."""

from __future__ import annotations

import numpy as np

from ulm.arrays import F64, I64
from ulm.jit import numba  # numba with a cache directory that works (ulm.jit)
from ulm.model import PowerCurve


class PowerTable:
    """The curves of a set of host types; `watts(kind, util)` per host."""

    def __init__(self, curves: tuple[PowerCurve, ...]) -> None:
        self.curves = curves
        width = max(len(c.watts) for c in curves)
        self._table = np.array([np.interp(np.linspace(0, 1, width),
                                          np.linspace(0, 1, len(c.watts)), c.watts)
                                for c in curves])
        self._steps = width - 1

    def watts(self, kind: I64, util: F64) -> F64:
        """Power of each host at its CPU utilisation (clipped to [0, 1])."""
        return np.asarray(_watts(self._table, self._steps, np.ascontiguousarray(kind, np.int64),
                                 np.ascontiguousarray(util, np.float64)))

    def max_watts(self, kind: I64) -> F64:
        return np.asarray(self._table[kind, -1])

    def idle_watts(self, kind: I64) -> F64:
        return np.asarray(self._table[kind, 0])


@numba.njit(cache=True)
def _watts(table: F64, steps: int, kind: I64, util: F64) -> F64:
    """Compiled: the simulator asks this ~4,000 times a day for 800 hosts."""
    out = np.empty(len(kind))
    for i in range(len(kind)):
        u = min(max(util[i], 0.0), 1.0) * steps
        lo = min(int(np.floor(u)), steps - 1)
        frac = u - lo
        a = table[kind[i], lo]
        out[i] = a + (table[kind[i], lo + 1] - a) * frac
    return out


def trapezoid_j(table: PowerTable, kind: I64, u_from: F64, u_to: F64, dt: float,
                active: F64) -> float:
    """Energy (J) of one interval: the mean of the power at both ends, for active hosts."""
    p = (table.watts(kind, u_from) + table.watts(kind, u_to)) * 0.5
    return float((p * active).sum() * dt)
