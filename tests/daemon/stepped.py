"""Simulated time that only the test thread moves, for plans that run in background threads.

A worker thread's `sleep` waits until the test has advanced the clock past its wake-up time;
`quiet` waits (in real time, bounded) until every plan thread is asleep again, so that what
the test looks at next is what the simulated instant shows, not a race.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode, RoundResult
from ulm.drivers.base import DomainState, MigrationOptions, MigrationStatus
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits
from ulm.policy import Policy
from ulm.store import Store

_MX = threading.RLock()  # SimCluster is not thread-safe: the round and the plans share it


class SteppedClock(SimClock):
    def __init__(self, start: float) -> None:
        super().__init__(start)
        self._cv = threading.Condition()
        self._main = threading.get_ident()
        self._sleepers: dict[int, float] = {}  # thread -> wakes at

    def now(self) -> float:
        with self._cv:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._cv:
            if threading.get_ident() == self._main:
                self._now += max(seconds, 0.0)
                self._cv.notify_all()
                return
            me, until = threading.get_ident(), self._now + max(seconds, 0.0)
            self._sleepers[me] = until
            try:
                while self._now < until:
                    self._cv.wait(timeout=1.0)
            finally:
                del self._sleepers[me]

    def quiet(self, ex: Executor, timeout_s: float = 20.0) -> None:
        """Until every plan thread sleeps towards a time still to come (or has ended)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._cv:
                due = any(t <= self._now for t in self._sleepers.values())
                asleep = len(self._sleepers)
            if not due and asleep >= len(ex.running):
                return
            time.sleep(0.002)
        raise AssertionError("the plan threads did not settle")


class LockedCluster(SimCluster):
    """SimCluster under one lock: a round and the plans' threads call it at once."""

    def is_on(self, host: str) -> bool:
        with _MX:
            return super().is_on(host)

    def states(self, vm: str) -> dict[str, DomainState]:
        with _MX:
            return super().states(vm)

    def list_vms(self, host: str) -> list[str]:
        with _MX:
            return super().list_vms(host)

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        with _MX:
            return super().start_migration(vm, src, dst, options)

    def poll(self, job_id: str) -> MigrationStatus:
        with _MX:
            return super().poll(job_id)

    def abort(self, job_id: str) -> None:
        with _MX:
            super().abort(job_id)

    def running_jobs(self) -> list[str]:
        """The VMs whose migration is in flight now."""
        with _MX:
            super().is_on("")  # brings the jobs up to the clock
            return sorted(j.vm for j in self.jobs.values() if j.state.value == "running")


@dataclass
class BgWorld:
    daemon: Daemon
    cluster: LockedCluster
    store: Store
    clock: SteppedClock
    source: SimSource

    def round(self) -> RoundResult:
        """One round, then the interval: the plan threads move on with the clock."""
        r = self.daemon.run_round()
        self.clock.quiet(self.daemon.executor)
        self.clock.sleep(self.daemon.cfg.collect.interval_s)
        self.clock.quiet(self.daemon.executor)
        return r


def bg_world(tmp: Path, placement: dict[str, str], hosts: tuple[str, ...], policy: Policy,
             vm_cpu: dict[str, float], limits: Limits | None = None) -> BgWorld:
    clock = SteppedClock(time.time() - 600.0)
    cluster = LockedCluster(clock, dict(placement), {v: 512.0 for v in placement})
    source = SimSource(cluster, {h: 4 for h in hosts}, {h: 4096.0 for h in hosts},
                       vm_cpu=dict(vm_cpu), vm_vcpus={v: 2 for v in placement})
    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp}/ulm.db"),
                 collect=CollectConfig(interval_s=2.0, window=4),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"test:///{h}") for h in hosts))
    store = Store.open(cfg.store.url, mode="create")
    executor = Executor(cluster, clock, store, limits or Limits(poll_s=1.0, max_concurrent=4))
    d = Daemon(cfg, policy, store, [source], executor, clock, Mode.enforce)
    d.background = True
    d.start()
    return BgWorld(d, cluster, store, clock, source)
