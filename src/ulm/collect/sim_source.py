"""A `MetricsSource` for `SimCluster`: readings of a simulated cluster, for the simulator and the
contract tests (the same daemon round, fed from memory instead of libvirt)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.drivers.sim import SimCluster
from ulm.model import VmState


@dataclass
class SimSource:
    cluster: SimCluster
    cores: Mapping[str, int]  # host -> cores (= cpu units)
    mem_mib: Mapping[str, float]  # host -> memory
    vm_cpu: dict[str, float] = field(default_factory=dict)  # vm -> cores busy
    vm_vcpus: dict[str, int] = field(default_factory=dict)
    forced: dict[str, float] = field(default_factory=dict)  # host -> CPU fraction reported
    name: str = "libvirt"
    #: report each host's memory in use (its VMs' memory), as a real source does; off by
    #: default: the contract tests' snapshots were written without it
    host_mem: bool = False

    def collect(self, now: float) -> Collection:
        hosts = []
        for h, cores in self.cores.items():
            if not self.cluster.is_on(h):
                hosts.append(HostReading(h, now, False, f"{h}: connection refused",
                                         source=self.name))
                continue
            vms = self.cluster.list_vms(h)
            busy = sum(self.vm_cpu.get(v, 0.0) for v in vms) / cores
            cpu = self.forced.get(h, min(busy, 1.0))
            used = sum(self.cluster.mem_mib.get(v, 1024.0) for v in vms) if self.host_mem else None
            hosts.append(HostReading(h, now, True, "", cores, self.mem_mib[h], cpu, used, None,
                                     self.name))
        vms_out = [VMReading(v, h, now, self.vm_vcpus.get(v, 1),
                             self.cluster.mem_mib.get(v, 1024.0), self.vm_cpu.get(v, 0.0), None,
                             state=self._state(v))
                   for v, h in sorted(self.cluster.placement.items())
                   if self.cluster.is_on(h)]
        return Collection(now, tuple(hosts), tuple(vms_out))

    def _state(self, vm: str) -> VmState:
        """Where it is placed (the sets, not `states()`: that one ticks the clock per VM)."""
        if vm in self.cluster.crashed:
            return VmState.CRASHED
        return VmState.PAUSED if vm in self.cluster.paused else VmState.RUNNING
