"""The physical limit: the least power that can host a given demand, with ideal packing and
free, instant migrations (see docs/simulator.md, "The lower bound").

Per instant, with D MIPS of CPU demand and (honest mode) R MB of VM RAM to hold:

* every host draws at least its load times its best watts per MIPS, which for SPECpower curves
  is at 100 % CPU (P(u)/u falls with u); so D MIPS cost at least D times the best ratio,
  filling the most efficient type first while hosts of that type remain (fluid packing);
* in honest mode at least ceil(R / host RAM) hosts must be on, each drawing at least its idle
  power plus its load times the smallest marginal watts per MIPS of its curve.

The bound is the larger of the two; both hold for any placement, so no policy can beat it.
"""

from __future__ import annotations

import math

import numpy as np

from ulm.arrays import F64
from ulm.sim.hosttypes import Hosts
from ulm.sim.power import PowerTable


class LowerBound:
    def __init__(self, hosts: Hosts, power: PowerTable) -> None:
        types = range(len(hosts.types))
        self.count = np.array([(hosts.kind == k).sum() for k in types], np.float64)
        self.cap = np.array([t.mips for t in hosts.types])
        self.ram = np.array([t.ram_mb for t in hosts.types])
        kinds = np.arange(len(hosts.types))
        self.idle = power.idle_watts(kinds)
        self.full = power.max_watts(kinds)
        grid = np.linspace(0.1, 1.0, 10)
        slopes = [(power.watts(np.full(10, k), grid) - self.idle[k]) / (grid * self.cap[k])
                  for k in kinds]
        self.slope = np.array([float(s.min()) for s in slopes])  # min marginal W per MIPS
        self.by_efficiency = np.argsort(self.full / self.cap, kind="stable")
        self.by_slope = np.argsort(self.slope, kind="stable")

    def cpu_watts(self, demand: float) -> float:
        """Fluid packing of `demand` MIPS at 100 % on the most efficient hosts."""
        left, watts = demand, 0.0
        for k in self.by_efficiency:
            take = min(left, self.count[k] * self.cap[k])
            watts += take * self.full[k] / self.cap[k]
            left -= take
        return watts + max(left, 0.0) * float((self.full / self.cap).max())

    def ram_watts(self, demand: float, ram_mb: float) -> float:
        """At least ceil(R / RAM) hosts on, idle power plus the cheapest marginal load."""
        if ram_mb <= 0:
            return 0.0
        if len(self.cap) != 2:  # the general case: every on host at the cheapest idle
            n = math.ceil(ram_mb / float(self.ram.max()))
            return n * float(self.idle.min()) + demand * float(self.slope.min())
        a, b = int(self.by_slope[0]), int(self.by_slope[1])  # a: cheaper marginal
        n_a = np.arange(int(self.count[a]) + 1, dtype=np.float64)
        load_a = np.minimum(demand, n_a * self.cap[a])
        need_b = np.maximum(np.ceil((demand - load_a) / self.cap[b]),
                            np.ceil(np.maximum(ram_mb - n_a * self.ram[a], 0.0) / self.ram[b]))
        ok = need_b <= self.count[b]
        if not ok.any():
            return self.cpu_watts(demand)
        watts = (n_a * self.idle[a] + need_b * self.idle[b] + load_a * self.slope[a]
                 + (demand - load_a) * self.slope[b])
        return float(watts[ok].min())

    def watts(self, demand: float, ram_mb: float) -> float:
        return max(self.cpu_watts(demand), self.ram_watts(demand, ram_mb))

    def series(self, demand: F64, ram_mb: F64) -> F64:
        return np.array([self.watts(float(d), float(r)) for d, r in
                         zip(demand, ram_mb, strict=True)])
