"""Power draw of SPECpower curves, vectorised over hosts: watts at 0, 10, ..., 100 % CPU,
linear in between (CloudSim's `PowerModelSpecPower`)."""

from __future__ import annotations

import numpy as np

from ulm.arrays import F64, I64
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
        u = np.clip(util, 0.0, 1.0) * self._steps
        lo = np.minimum(np.floor(u).astype(np.int64), self._steps - 1)
        frac = u - lo
        row = self._table[kind]
        rows = np.arange(len(kind))
        return np.asarray(row[rows, lo] + (row[rows, lo + 1] - row[rows, lo]) * frac)

    def max_watts(self, kind: I64) -> F64:
        return np.asarray(self._table[kind, -1])

    def idle_watts(self, kind: I64) -> F64:
        return np.asarray(self._table[kind, 0])


def trapezoid_j(table: PowerTable, kind: I64, u_from: F64, u_to: F64, dt: float,
                active: F64) -> float:
    """Energy (J) of one interval: the mean of the power at both ends, for active hosts."""
    p = (table.watts(kind, u_from) + table.watts(kind, u_to)) * 0.5
    return float((p * active).sum() * dt)
