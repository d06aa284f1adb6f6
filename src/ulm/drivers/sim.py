"""`SimCluster`: the driver protocols in memory, on a simulated clock.

It backs the simulator, dry runs and the executor's tests, the way httpx's `MockTransport`
backs a client's: the code under test is the real executor, only the far side is simulated.
A migration takes `mem / bandwidth` seconds of simulated time; faults can be injected (a
migration that fails, a slow one, a destination that powers off mid-migration, a BMC that does
not answer), and the cluster keeps every VM running in exactly one place, as libvirt does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ulm.clock import SimClock
from ulm.drivers.base import MigrationOptions, MigrationState, MigrationStatus, PowerState


@dataclass
class _Migration:
    vm: str
    src: str
    dst: str
    start: float
    end: float
    state: MigrationState = MigrationState.RUNNING
    error: str = ""


@dataclass
class SimCluster:
    clock: SimClock
    placement: dict[str, str]  # vm -> host
    mem_mib: dict[str, float] = field(default_factory=dict)
    bandwidth_mib_s: float = 62.5  # CloudSim: half of a 1 Gbit/s link
    powered: dict[str, bool] = field(default_factory=dict)  # host -> on (default: on)
    boot_s: float = 60.0
    fail: dict[str, str] = field(default_factory=dict)  # vm -> error of its next migration
    slow: dict[str, float] = field(default_factory=dict)  # vm -> duration factor
    dead_bmc: set[str] = field(default_factory=set)  # hosts whose BMC never answers
    jobs: dict[str, _Migration] = field(default_factory=dict)
    migrations: int = 0
    _booting: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- Hypervisor ----------------------------------------------------------------------------

    def is_on(self, host: str) -> bool:
        self._tick()
        return self.powered.get(host, True)

    def locate(self, vm: str) -> list[str]:
        self._tick()
        host = self.placement.get(vm)
        where = [host] if host is not None and self.is_on(host) else []
        for job in self.jobs.values():  # paused copy on the destination while in flight
            if job.vm == vm and job.state is MigrationState.RUNNING and self.is_on(job.dst):
                where.append(job.dst)
        return where

    def list_vms(self, host: str) -> list[str]:
        self._tick()
        if not self.is_on(host):
            return []
        return sorted(v for v, h in self.placement.items() if h == host)

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        self._tick()
        if self.placement.get(vm) != src:
            raise RuntimeError(f"domain {vm} is not running on {src}")
        if not self.is_on(dst):
            raise RuntimeError(f"unable to connect to {dst}: connection refused")
        bw = min(self.bandwidth_mib_s, options.bandwidth_mib_s or self.bandwidth_mib_s)
        duration = self.mem_mib.get(vm, 1024.0) / bw * self.slow.get(vm, 1.0)
        job_id = f"sim-{next(self._ids)}"
        now = self.clock.now()
        self.jobs[job_id] = _Migration(vm, src, dst, now, now + duration)
        return job_id

    def poll(self, job_id: str) -> MigrationStatus:
        self._tick()
        job = self.jobs[job_id]
        span = max(job.end - job.start, 1e-9)
        progress = min((self.clock.now() - job.start) / span, 1.0)
        return MigrationStatus(job.state, progress, job.error)

    def abort(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.state is MigrationState.RUNNING:
            job.state = MigrationState.ABORTED
            job.error = "operation aborted: migration job cancelled by client"

    def _tick(self) -> None:
        """Advances in-flight migrations and boots to the current simulated time."""
        now = self.clock.now()
        for host, ready in list(self._booting.items()):
            if now >= ready:
                self.powered[host] = True
                del self._booting[host]
        for job in self.jobs.values():
            if job.state is not MigrationState.RUNNING:
                continue
            if not self.powered.get(job.dst, True):
                job.state, job.error = MigrationState.FAILED, f"{job.dst}: connection reset"
            elif job.vm in self.fail and now >= job.start:
                job.state, job.error = MigrationState.FAILED, self.fail.pop(job.vm)
            elif now >= job.end:
                job.state = MigrationState.COMPLETED
                self.placement[job.vm] = job.dst
                self.migrations += 1

    # -- Power (per host, through `power(host)`) -----------------------------------------------

    def power(self, host: str) -> SimPower:
        return SimPower(self, host)


@dataclass
class SimPower:
    cluster: SimCluster
    host: str

    def power_on(self) -> None:
        self._bmc()
        if not self.cluster.powered.get(self.host, True):
            self.cluster._booting[self.host] = self.cluster.clock.now() + self.cluster.boot_s

    def power_off(self) -> None:
        self._bmc()
        self.cluster.powered[self.host] = False
        # A powered-off host takes its VMs down with it; the executor never lets that happen.
        for vm in [v for v, h in self.cluster.placement.items() if h == self.host]:
            del self.cluster.placement[vm]

    def state(self) -> PowerState:
        self._bmc()
        return PowerState.ON if self.cluster.is_on(self.host) else PowerState.OFF

    def _bmc(self) -> None:
        if self.host in self.cluster.dead_bmc:
            raise TimeoutError(f"BMC of {self.host} does not answer")
