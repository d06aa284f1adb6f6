"""Where the VMs start: the simulated cluster's VM creation at t = 0 (CloudSim's
`allocateHostForVm`), before any scheduling round.

VMs are created in list order at their *nominal* size (full MIPS, full RAM; CloudSim's "being
instantiated" request) on a host that fits them (one core holds the vCPU, free MIPS, RAM,
bandwidth). `first-fit` takes the lowest host id (CloudSim's `PowerVmAllocationPolicySimple`,
used by NPA and DVFS); `pabfd` takes the smallest power increase (ties: lowest id) on a host that
the policy's threshold would not call overloaded. CloudSim measures that increase from the
power at 0 % (no host has been updated yet at t = 0), which spreads the VMs over all hosts;
the honest mode measures it from the host's current draw. CloudSim's overload check at t = 0
sees only the new VM (VMs already created request nothing until their cloudlets arrive), so
it never refuses a host there; neither does the honest mode (nominal sizes already fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ulm.arrays import F64, I64
from ulm.errors import UlmError
from ulm.sim.hosttypes import VM_BW_MBIT, Hosts
from ulm.sim.power import PowerTable


@dataclass(frozen=True, slots=True)
class Start:
    strategy: str  # "first-fit" | "pabfd"
    from_idle: bool  # CloudSim: the power increase is measured from P(0)


def place_initial(hosts: Hosts, power: PowerTable, mips: F64, ram: F64, rule: Start) -> I64:
    host_mips, core, cap_ram = hosts.mips, hosts.core_mips, hosts.ram
    bw = np.array([t.bw_mbit for t in hosts.types])[hosts.kind]
    used = np.zeros(hosts.n)
    used_ram = np.zeros(hosts.n)
    used_bw = np.zeros(hosts.n)
    out = np.full(len(mips), -1, np.int64)
    base = power.idle_watts(hosts.kind) if rule.from_idle else None
    for v in range(len(mips)):
        m, r = float(mips[v]), float(ram[v])
        ok = ((core >= m) & (host_mips - used >= m) & (cap_ram - used_ram >= r)
              & (bw - used_bw >= VM_BW_MBIT))
        cand = np.flatnonzero(ok)
        if not len(cand):
            raise UlmError(f"VM {v} ({m:.0f} MIPS, {r:.0f} MB) fits on no host at t = 0: "
                           "give the simulation more hosts (--hosts)")
        if rule.strategy == "first-fit":
            h = int(cand[0])
        else:
            k = hosts.kind[cand]
            after = power.watts(k, (used[cand] + m) / host_mips[cand])
            now = base[cand] if base is not None else power.watts(k, used[cand] / host_mips[cand])
            h = int(cand[np.argmin(after - now)])
        out[v] = h
        used[h] += m
        used_ram[h] += r
        used_bw[h] += VM_BW_MBIT
    return out
