"""The recording through the simulator: the same engine as `ulm simulate`, on the real cluster.

`ReplayEngine` changes only what the recording knows better than CloudSim's set-up: the hosts
(their names, CPU, memory and power curves from the store), the VMs' sizes (vCPUs, memory), where
each VM starts (the host of its first sample), which hosts start off, maintenance (a booked
host is in maintenance while its booking lasts, so the policy drains it as the daemon did), and
unmanaged VMs (never moved). A VM's request is capped by its own vCPUs in the trace already, so
the CloudSim rule that caps a VM at one host core is lifted. Host power states are real
(`SimConfig.boot_s`): an empty host draws idle power until the policy powers it off.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ulm.arrays import F64, I64
from ulm.model import HostState
from ulm.policy import Policy
from ulm.replay.load import Recording
from ulm.sim.engine import Engine, SimConfig, SimResult
from ulm.sim.hoststates import OFF
from ulm.sim.hosttypes import Hosts, HostType
from ulm.sim.traces import INTERVAL_S
from ulm.snapshot import Snapshot

MIPS_PER_CPU = 1000.0  # the simulator counts CPU in MIPS; ULM in cpu units (cores)


@dataclass(frozen=True, eq=False)
class NamedHosts(Hosts):
    """The store's hosts: one host type each, under their real names."""

    host_names: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return self.host_names


def hosts_of(rec: Recording) -> NamedHosts:
    mbit = rec.bw_mib_s * 16.0  # the engine gives a migration half the link, in MB/s
    types = tuple(HostType(name, int(cores), cpu * MIPS_PER_CPU / cores, mem, mbit, curve)
                  for name, cores, cpu, mem, curve in zip(
                      rec.host_names, rec.host_cores.tolist(), rec.host_cpu.tolist(),
                      rec.host_mem.tolist(), rec.host_curve, strict=True))
    return NamedHosts(types, np.arange(len(types), dtype=np.int64), rec.host_names)


class ReplayEngine(Engine):
    def __init__(self, rec: Recording, policy: Policy, config: SimConfig) -> None:
        self.rec = rec
        super().__init__(rec.trace, policy, config)
        self.core_mips = self.host_mips.copy()  # requests are capped at the VM's vCPUs
        if self.states is not None:
            empty = np.bincount(self.cluster.vm_host[self.cluster.vm_host >= 0],
                                minlength=self.hosts.n) == 0
            self.states.state[rec.off_at_start & empty] = OFF

    def vm_sizes(self, n: int) -> tuple[F64, F64]:
        return self.rec.vm_vcpus * MIPS_PER_CPU, self.rec.vm_mem.copy()

    def initial_hosts(self) -> I64:
        return self.rec.vm_start.copy()

    def snapshot(self, k: int, t: float, req: F64) -> Snapshot:
        snap = super().snapshot(k, t, req)
        order = self.cluster.list_order()
        changes: dict[str, Any] = {"vm_migratable": self.rec.vm_managed[order],
                                   "vm_vcpus": self.rec.vm_vcpus[order]}
        now = self.start + t
        down = {h for h, a, b in self.rec.maintenance if a <= now < b}
        if down:
            changes["host_state"] = tuple(
                HostState.MAINTENANCE if i in down and s is HostState.ON else s
                for i, s in enumerate(snap.host_state))
        return dataclasses.replace(snap, **changes)

    def result(self, wall_s: float) -> SimResult:
        out = super().result(wall_s)
        tot = self.meter.totals
        out.extra.update({"overload_host_h": tot.violation_s / 3600.0,
                          "active_host_h": tot.active_s / 3600.0})
        return out


@dataclass(frozen=True, eq=False)
class Task:
    rec: Recording
    policy: Policy
    config: SimConfig


def config_for(rec: Recording, boot_s: float) -> SimConfig:
    return SimConfig(mode="honest", hosts=hosts_of(rec), start=rec.since, boot_s=boot_s)


def replay_one(task: Task) -> SimResult:
    return ReplayEngine(task.rec, task.policy, task.config).run()


def replay_all(rec: Recording, policies: Sequence[Policy], boot_s: float,
               jobs: int = 1) -> list[SimResult]:
    """One run per policy, in their order; `jobs` > 1: that many processes (the same results,
    every run being deterministic)."""
    config = config_for(rec, boot_s)
    tasks = [Task(rec, p, config) for p in policies]
    if jobs <= 1 or len(tasks) <= 1:
        return [replay_one(t) for t in tasks]
    # spawn, not fork: the parent may hold threads a forked child must not inherit
    with cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)),
                                mp_context=mp.get_context("spawn"), initializer=_warm) as pool:
        return list(pool.map(replay_one, tasks))


def _warm() -> None:
    from ulm.sim.engine import load_compiled_sim

    load_compiled_sim()


def simulated_span(rec: Recording) -> float:
    return (rec.buckets - 2) * INTERVAL_S
