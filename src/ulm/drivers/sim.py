"""`SimCluster`: the driver protocols in memory, on a simulated clock.

It backs the simulator, dry runs and the executor's tests, the way httpx's `MockTransport`
backs a client's: the code under test is the real executor, only the far side is simulated.
A migration moves `mem / bandwidth` seconds' worth of memory in simulated time; faults can be
injected — a migration that fails, a slow one, one that stalls, a network cut, an abort that
fails, a VM left paused on its source, a destination that powers off mid-migration, a BMC that
does not answer — and the cluster keeps every VM in exactly one place, as libvirt does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ulm.clock import SimClock
from ulm.drivers.base import (
    DomainState,
    MigrationOptions,
    MigrationState,
    MigrationStatus,
    PowerState,
)


@dataclass
class _Migration:
    vm: str
    src: str
    dst: str
    start: float
    duration: float  # seconds of transfer it needs
    mem_mib: float
    state: MigrationState = MigrationState.RUNNING
    error: str = ""
    done_s: float = 0.0  # seconds of transfer made so far
    seen_at: float = 0.0  # when `done_s` was last brought up to date
    cancel_at: float | None = None  # aborted: the job ends then (`SimCluster.cancel_s`)


class Placement(dict[str, str]):
    """vm -> host, with the VMs of each host kept alongside: `list_vms` of every host is one
    pass over the cluster, not one per host (quadratic: at 10,000 VMs the double, not the
    daemon, was what a benchmark's collection measured). Every way of changing it keeps both."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._on: dict[str, dict[str, None]] = {}  # host -> its VMs (an ordered set)
        self.update(items)

    def on(self, host: str) -> Iterable[str]:
        return self._on.get(host, {}).keys()

    def __setitem__(self, vm: str, host: str) -> None:
        old = self.get(vm)
        if old is not None:
            self._on[old].pop(vm, None)
        super().__setitem__(vm, host)
        self._on.setdefault(host, {})[vm] = None

    def __delitem__(self, vm: str) -> None:
        host = self[vm]
        super().__delitem__(vm)
        self._on[host].pop(vm, None)

    def pop(self, vm: str, *default: Any) -> Any:
        if vm in self:
            host = self[vm]
            del self[vm]
            return host
        return super().pop(vm, *default)

    def popitem(self) -> tuple[str, str]:
        vm, host = super().popitem()
        self._on[host].pop(vm, None)
        return vm, host

    def setdefault(self, vm: str, host: str) -> str:
        if vm not in self:
            self[vm] = host
        return self[vm]

    def update(self, *others: Any, **kw: str) -> None:
        for vm, host in dict(*others, **kw).items():
            self[vm] = host

    def clear(self) -> None:
        super().clear()
        self._on.clear()

    def __ior__(self, other: Any) -> Placement:  # type: ignore[override,misc]
        self.update(other)
        return self


@dataclass
class SimCluster:
    clock: SimClock
    placement: dict[str, str]  # vm -> host (kept as a `Placement`, which indexes it)
    mem_mib: dict[str, float] = field(default_factory=dict)
    bandwidth_mib_s: float = 62.5  # CloudSim: half of a 1 Gbit/s link
    powered: dict[str, bool] = field(default_factory=dict)  # host -> on (default: on)
    boot_s: float = 60.0
    fail: dict[str, str] = field(default_factory=dict)  # vm -> error of its next migration
    slow: dict[str, float] = field(default_factory=dict)  # vm -> duration factor
    dead_bmc: set[str] = field(default_factory=set)  # hosts whose BMC never answers
    #: vm -> seconds after its migration starts at which the transfer stops moving for good
    #: (dirty rate above bandwidth: data remaining no longer decreases).
    stall: dict[str, float] = field(default_factory=dict)
    #: host -> (from, until): its network is cut; no migration to or from it makes progress.
    cut: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: libvirtd-to-libvirtd keepalive of a peer-to-peer migration: a cut this long fails the
    #: job ("lost connection to destination host"); None: the job waits for the link.
    peer_keepalive_s: float | None = None
    abort_fails: dict[str, str] = field(default_factory=dict)  # vm -> error every abort raises
    pause_on_failure: set[str] = field(default_factory=set)  # vm left paused if its job fails
    paused: set[str] = field(default_factory=set)  # vms paused where they run
    crashed: set[str] = field(default_factory=set)  # vms crashed where they are placed
    resume_fails: dict[str, str] = field(default_factory=dict)  # vm -> error of resume
    #: How long a job takes to end after an abort (libvirt cancels the transfer, then tears
    #: the destination's copy down); 0: at once. No transfer is made meanwhile.
    cancel_s: float = 0.0
    jobs: dict[str, _Migration] = field(default_factory=dict)
    migrations: int = 0
    _booting: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "placement" and not isinstance(value, Placement):
            value = Placement(value)  # a copy that indexes VMs by host (`list_vms`)
        super().__setattr__(name, value)

    # -- Hypervisor ----------------------------------------------------------------------------

    def is_on(self, host: str) -> bool:
        self._tick()
        return self.powered.get(host, True)

    def locate(self, vm: str) -> list[str]:
        return [h for h, s in self.states(vm).items()
                if s not in (DomainState.SHUTOFF, DomainState.CRASHED)]

    def states(self, vm: str) -> dict[str, DomainState]:
        self._tick()
        out: dict[str, DomainState] = {}
        host = self.placement.get(vm)
        if host is not None and self.is_on(host):
            out[host] = (DomainState.CRASHED if vm in self.crashed else
                         DomainState.PAUSED if vm in self.paused else DomainState.RUNNING)
        for job in self.jobs.values():  # paused copy on the destination while in flight
            if job.vm == vm and job.state is MigrationState.RUNNING and self.is_on(job.dst):
                out[job.dst] = DomainState.PAUSED
        return out

    def resume(self, vm: str, host: str) -> None:
        if vm in self.resume_fails:
            raise RuntimeError(self.resume_fails[vm])
        if self.placement.get(vm) != host:
            raise RuntimeError(f"domain {vm} is not on {host}")
        self.paused.discard(vm)

    def adopt(self, vm: str, src: str, dst: str) -> str | None:
        self._tick()
        return next((k for k, j in self.jobs.items() if j.vm == vm and j.src == src
                     and j.state is MigrationState.RUNNING), None)

    def list_vms(self, host: str) -> list[str]:
        self._tick()
        if not self.is_on(host):
            return []
        return sorted(cast(Placement, self.placement).on(host))

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        self._tick()
        if self.placement.get(vm) != src:
            raise RuntimeError(f"domain {vm} is not running on {src}")
        if not self.is_on(dst):
            raise RuntimeError(f"unable to connect to {dst}: connection refused")
        bw = min(self.bandwidth_mib_s, options.bandwidth_mib_s or self.bandwidth_mib_s)
        mem = self.mem_mib.get(vm, 1024.0)
        duration = mem / bw * self.slow.get(vm, 1.0)
        job_id = f"sim-{next(self._ids)}"
        now = self.clock.now()
        self.jobs[job_id] = _Migration(vm, src, dst, now, duration, mem, seen_at=now)
        return job_id

    def poll(self, job_id: str) -> MigrationStatus:
        self._tick()
        job = self.jobs[job_id]
        progress = min(job.done_s / max(job.duration, 1e-9), 1.0)
        return MigrationStatus(job.state, progress, job.error, job.mem_mib * (1.0 - progress))

    def abort(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.vm in self.abort_fails:
            raise RuntimeError(self.abort_fails[job.vm])
        if job.state is MigrationState.RUNNING and self.cancel_s > 0:
            if job.cancel_at is None:
                job.cancel_at = self.clock.now() + self.cancel_s
        elif job.state is MigrationState.RUNNING:
            self._cancelled(job)

    def _cancelled(self, job: _Migration) -> None:
        self._end(job, MigrationState.ABORTED,
                  "operation aborted: migration job cancelled by client")

    def _end(self, job: _Migration, state: MigrationState, error: str = "") -> None:
        job.state, job.error = state, error
        if state is MigrationState.COMPLETED:
            self.placement[job.vm] = job.dst
            self.migrations += 1
        elif job.vm in self.pause_on_failure and self.placement.get(job.vm) == job.src:
            self.paused.add(job.vm)  # libvirt could not restart the guest's CPUs

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
            if job.cancel_at is not None:
                if now >= job.cancel_at:
                    self._cancelled(job)
            elif not self.powered.get(job.dst, True):
                self._end(job, MigrationState.FAILED, f"{job.dst}: connection reset")
            elif job.vm in self.fail and now >= job.start:
                self._end(job, MigrationState.FAILED, self.fail.pop(job.vm))
            else:
                self._advance(job, now)

    def _advance(self, job: _Migration, now: float) -> None:
        """Transfer time made between `seen_at` and `now`: none while stalled or cut off."""
        lo, hi = job.seen_at, now
        job.seen_at = now
        if job.vm in self.stall:
            hi = min(hi, job.start + self.stall[job.vm])
        made = max(hi - lo, 0.0)
        for host in (job.src, job.dst):
            if host in self.cut:
                a, b = self.cut[host]
                made -= max(min(hi, b) - max(lo, a), 0.0)
                lost = min(now, b) - a if now >= a else 0.0
                if self.peer_keepalive_s is not None and lost >= self.peer_keepalive_s:
                    self._end(job, MigrationState.FAILED,
                              f"operation failed: lost connection to destination host {job.dst}")
                    return
        job.done_s += max(made, 0.0)
        if job.done_s >= job.duration - 1e-9:
            self._end(job, MigrationState.COMPLETED)

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
        for vm in list(cast(Placement, self.cluster.placement).on(self.host)):
            del self.cluster.placement[vm]

    def state(self) -> PowerState:
        self._bmc()
        return PowerState.ON if self.cluster.is_on(self.host) else PowerState.OFF

    def _bmc(self) -> None:
        if self.host in self.cluster.dead_bmc:
            raise TimeoutError(f"BMC of {self.host} does not answer")
