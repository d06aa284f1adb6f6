"""Energy and SLA accounting between two instants (CloudSim's `Helper.printResults` metrics).

The state recorded at an instant holds until the next one, as in CloudSim's state histories:

* energy: trapezoid of the power at both ends, for hosts active at the start;
* SLATAH = sum over hosts of (time active with allocated < requested) / sum of time active —
  a ratio of sums, as CloudSim computes it;
* PDM = sum over VMs of the MIPS shortfall while migrating away / sum of all requested MIPS;
* host shutdowns = transitions from active to inactive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.sim.accounting import OUT, Entries, Share
from ulm.sim.power import PowerTable


@dataclass(eq=False)
class Recorded:
    """What was recorded at the last instant (after everything that happened then)."""

    time: float
    host_util: F64  # fraction of capacity
    host_active: B
    host_violating: B
    vm_request: F64  # per entry that records (not incoming): MIPS requested
    vm_shortfall_migrating: F64  # per such entry: requested - allocated while migrating away


def record(time: float, entries: Entries, sh: Share, host_mips: F64, active_rule: str,
           on: B | None = None) -> Recorded:
    util = sh.host_used / host_mips
    # honest: a host with a VM on it is on; CloudSim: active iff something is allocated on it;
    # with real power states (`on` given): every host that is powered on, empty or not
    if on is not None:
        active = on.copy()
    else:
        active = sh.host_vms > 0 if active_rule == "vms" else sh.host_used > 0
    mine = entries.kind != 2
    out = entries.kind[mine] == OUT
    short = np.where(out, np.maximum(sh.request[mine] - sh.alloc[mine], 0.0), 0.0)
    return Recorded(time, util, active, sh.host_used < sh.host_request, sh.request[mine], short)


@dataclass(eq=False)
class Totals:
    energy_j: float = 0.0
    active_s: float = 0.0
    violation_s: float = 0.0
    requested_mips_s: float = 0.0
    shortfall_migrating_mips_s: float = 0.0
    shutdowns: int = 0
    mem_overload_s: float = 0.0

    def slatah(self) -> float:
        return self.violation_s / self.active_s if self.active_s > 0 else 0.0

    def pdm(self) -> float:
        return (self.shortfall_migrating_mips_s / self.requested_mips_s
                if self.requested_mips_s > 0 else 0.0)


@dataclass(eq=False)
class Meter:
    """Accumulates the totals interval by interval."""

    power: PowerTable
    kind: I64  # host type per host
    energy: str  # "utilisation" | "max-power"
    totals: Totals
    last: Recorded | None = None
    start: float = 0.0  # time energy starts being counted when nothing was recorded yet

    def advance(self, now_util: F64, time: float) -> None:
        """Accounts [last instant, time]; `now_util` is the utilisation computed at `time`."""
        last = self.last
        t0 = last.time if last is not None else self.start
        dt = time - t0
        if dt <= 0:
            return
        tot = self.totals
        if self.energy == "max-power":
            tot.energy_j += float(self.power.max_watts(self.kind).sum()) * dt
        if last is None:
            return  # CloudSim: no utilisation recorded before the first update: no energy
        if self.energy != "max-power":
            act = last.host_active
            if act.any():
                k = self.kind[act]
                p = self.power.watts(k, last.host_util[act]) + self.power.watts(k, now_util[act])
                tot.energy_j += float(p.sum()) * 0.5 * dt
        tot.active_s += float(last.host_active.sum()) * dt
        tot.violation_s += float((last.host_active & last.host_violating).sum()) * dt
        tot.requested_mips_s += float(last.vm_request.sum()) * dt
        tot.shortfall_migrating_mips_s += float(last.vm_shortfall_migrating.sum()) * dt

    def set(self, rec: Recorded) -> None:
        if self.last is not None:
            self.totals.shutdowns += int((self.last.host_active & ~rec.host_active).sum())
        self.last = rec
