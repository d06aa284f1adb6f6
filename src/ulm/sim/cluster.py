"""`ArrayCluster`: the `Hypervisor` protocol in memory, column-wise, for the trace simulator.

`ulm.drivers.sim.SimCluster` keeps one Python object per VM and per job, which suits the
executor's tests; a simulated day of CloudSim's benchmark starts 25,000-60,000 migrations among
1,500 VMs, so this cluster keeps the same state in numpy arrays and starts a round's migrations
in one call (`start_batch`). The protocol methods (`locate`, `list_vms`, `start_migration`,
`poll`, `abort`) work on the same arrays, so the executor could drive it too.

A migration takes `RAM / bandwidth` seconds of simulated time (CloudSim: half of the host's
1 Gbit/s link, 62.5 MB/s). While it is in flight the VM runs on its source and is accounted on
the destination as well (`ulm.sim.accounting`). A VM sent to two hosts in one round (CloudSim's
consolidation can do that) ends on the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.clock import SimClock
from ulm.drivers.base import MigrationOptions, MigrationState, MigrationStatus
from ulm.sim.accounting import Entries, entries_of


@dataclass(eq=False)
class ArrayCluster:
    clock: SimClock
    vm_names: tuple[str, ...]
    host_names: tuple[str, ...]
    vm_host: I64  # current host (-1: not placed or gone)
    vm_mem: F64  # MB to copy per migration
    host_bw_mb_s: F64  # per host: MB/s available to migration (CloudSim: BW / 2)
    alive: B = field(default_factory=lambda: np.zeros(0, np.bool_))
    seq: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # VM-list order on hosts
    last_moved: F64 = field(default_factory=lambda: np.zeros(0))
    last_took: F64 = field(default_factory=lambda: np.zeros(0))  # its last migration (s)
    in_vm: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    in_dst: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    in_end: F64 = field(default_factory=lambda: np.zeros(0))
    migrations: int = 0
    _next_seq: int = 0
    _vm_index: dict[str, int] = field(default_factory=dict)
    _host_index: dict[str, int] = field(default_factory=dict)
    _jobs: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    _order: I64 | None = None  # list_order, until a migration completes or a VM stops
    _entries: Entries | None = None  # entries(), until a migration starts or ends

    def __post_init__(self) -> None:
        n = len(self.vm_names)
        if len(self.alive) != n:
            self.alive = self.vm_host >= 0
        if len(self.seq) != n:
            self.seq = np.arange(n, dtype=np.int64)
            self._next_seq = n
        if len(self.last_moved) != n:
            self.last_moved = np.full(n, np.nan)
        if len(self.last_took) != n:
            self.last_took = np.full(n, np.nan)
        self._vm_index = {name: i for i, name in enumerate(self.vm_names)}
        self._host_index = {name: i for i, name in enumerate(self.host_names)}

    # -- the simulator's fast path -----------------------------------------------------------

    def start_batch(self, vms: I64, dsts: I64) -> None:
        """Starts these migrations now (from wherever each VM runs)."""
        if not len(vms):
            return
        now = self.clock.now()
        src = self.vm_host[vms]
        if (src < 0).any() or (~self.alive[vms]).any():
            raise RuntimeError("a migration names a VM that is not running")
        duration = self.vm_mem[vms] / self.host_bw_mb_s[dsts]
        self.last_took[vms] = duration  # known at the start here: the copy's length is fixed
        self.in_vm = np.concatenate([self.in_vm, vms])
        self.in_dst = np.concatenate([self.in_dst, dsts])
        self.in_end = np.concatenate([self.in_end, now + duration])
        self.migrations += len(vms)
        self._entries = None

    def next_completion(self) -> float | None:
        return float(self.in_end.min()) if len(self.in_end) else None

    def complete_until(self, t: float) -> int:
        """Completes the migrations that end at or before `t`, in start order; returns how many."""
        done = self.in_end <= t
        if not done.any():
            return 0
        for vm, dst in zip(self.in_vm[done].tolist(), self.in_dst[done].tolist(), strict=True):
            self.vm_host[vm] = dst
            self.seq[vm] = self._next_seq  # appended to the destination's VM list
            self._next_seq += 1
            self.last_moved[vm] = t
        self._order = None
        self._keep(~done)
        return int(done.sum())

    def _keep(self, keep: B) -> None:
        self.in_vm, self.in_dst = self.in_vm[keep], self.in_dst[keep]
        self.in_end = self.in_end[keep]
        self._entries = None

    def remove(self, vms: I64) -> None:
        """VMs that stop (CloudSim deletes VMs whose demand is exactly 0)."""
        self.alive[vms] = False
        self._order = None
        self._entries = None

    def entries(self) -> Entries:
        """What runs where, migrations in flight included (`ulm.sim.accounting`)."""
        if self._entries is None:  # shared by the accounting of consecutive instants
            self._entries = entries_of(self.vm_host, self.alive, self.list_order(), self.in_vm,
                                       self.in_dst)
        return self._entries

    def list_order(self) -> I64:
        """Live VMs in the order of their hosts' VM lists (oldest arrival first)."""
        if self._order is None:  # asked ~10 times a simulated round, changed far less often
            live = np.flatnonzero(self.alive)
            self._order = np.asarray(live[np.argsort(self.seq[live], kind="stable")])
            self._order.flags.writeable = False
        return self._order

    # -- the Hypervisor protocol ---------------------------------------------------------------

    def locate(self, vm: str) -> list[str]:
        i = self._vm_index[vm]
        if not self.alive[i] or self.vm_host[i] < 0:
            return []
        where = [self.host_names[int(self.vm_host[i])]]
        where += [self.host_names[int(d)] for d in self.in_dst[self.in_vm == i]]
        return where

    def list_vms(self, host: str) -> list[str]:
        h = self._host_index[host]
        return sorted(self.vm_names[i] for i in np.flatnonzero(self.alive & (self.vm_host == h)))

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        i, s, d = self._vm_index[vm], self._host_index[src], self._host_index[dst]
        if self.vm_host[i] != s or not self.alive[i]:
            raise RuntimeError(f"domain {vm} is not running on {src}")
        self.start_batch(np.array([i]), np.array([d]))
        job = f"sim-{self.migrations}"
        self._jobs[job] = (i, d, float(self.in_end[-1]))
        return job

    def poll(self, job: str) -> MigrationStatus:
        vm, dst, end = self._jobs[job]
        self.complete_until(self.clock.now())
        if end == np.inf:
            return MigrationStatus(MigrationState.ABORTED, 0.0, "aborted")
        if self.clock.now() >= end:
            ok = self.vm_host[vm] == dst
            return MigrationStatus(MigrationState.COMPLETED if ok else MigrationState.ABORTED,
                                   1.0 if ok else 0.0)
        return MigrationStatus(MigrationState.RUNNING, 0.0)

    def abort(self, job: str) -> None:
        vm, dst, _ = self._jobs[job]
        self._keep(~((self.in_vm == vm) & (self.in_dst == dst)))
        self._jobs[job] = (vm, dst, np.inf)
