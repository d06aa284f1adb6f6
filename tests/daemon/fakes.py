"""Real sockets and a fake slow world for the daemon tests: a munin-node speaking the real
line protocol on 127.0.0.1, and SimCluster sources that behave like libvirt in munin mode."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ulm.clock import SimClock
from ulm.collect.base import Collection, MetricsSource
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode, RoundResult
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits
from ulm.policy import Policy, parse_policy
from ulm.store import Store

T0 = float(int(time.time()) - 600)

HOT_TOML = """
name = "hot"
[overload]
threshold = 0.75
sustain = 2
window = 3
[selection]
rule = "largest"
[placement]
strategy = "first-fit"
[gates]
cooldown_s = 0
"""
HOT = parse_policy(HOT_TOML, "<test policy hot>")


class FakeMunin:
    """A munin-node on loopback: 4 cores busy `busy` of the time (its DERIVE counters grow by
    100 jiffies per core per fetch), 4 GiB of memory. `stop()` closes it like a dead node."""

    def __init__(self, busy: float) -> None:
        self.busy = busy
        self.user = 0.0
        self.idle = 0.0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn, conn.makefile("rw", encoding="utf-8", newline="\n") as f:
                f.write("# munin node at fake\n")
                f.flush()
                for line in f:
                    cmd = line.strip()
                    if cmd == "quit":
                        break
                    f.write(self._answer(cmd))
                    f.flush()

    def _answer(self, cmd: str) -> str:
        if cmd == "config cpu":
            return "graph_args --base 1000 -r --lower-limit 0 --upper-limit 400\n.\n"
        if cmd == "fetch cpu":
            self.user += 400 * self.busy
            self.idle += 400 * (1 - self.busy)
            return f"user.value {self.user:.0f}\nidle.value {self.idle:.0f}\n.\n"
        if cmd == "config memory":
            return f"graph_args --base 1024 -l 0 --upper-limit {4 * 2**30}\n.\n"
        if cmd == "fetch memory":
            return f"free.value {2 * 2**30}\nbuffers.value 0\ncached.value 0\n.\n"
        if cmd == "fetch load":
            return "load.value 0.5\n.\n"
        return "# Unknown command\n"

    def stop(self) -> None:
        # wakes the blocked accept() (a bare close() lets it take one more connection)
        with contextlib.suppress(OSError):  # stopped already
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


@dataclass
class HypervisorOnly:
    """SimSource as libvirt reports in munin mode: inventory and VM figures, no host CPU."""

    inner: SimSource
    name: str = "libvirt"

    def collect(self, now: float) -> Collection:
        col = self.inner.collect(now)
        return Collection(col.ts, tuple(dataclasses.replace(h, cpu=None) for h in col.hosts),
                          col.vms)


@dataclass
class World:
    daemon: Daemon
    cluster: SimCluster
    store: Store
    clock: SimClock
    source: SimSource
    extra: list[MetricsSource] = field(default_factory=list)

    def rounds(self, n: int) -> list[RoundResult]:
        out = []
        for _ in range(n):
            out.append(self.daemon.run_round())
            self.clock.sleep(self.daemon.cfg.collect.interval_s)
        return out


def world(tmp: Path, placement: dict[str, str], hosts: tuple[str, ...] = ("hA", "hB"),
          mode: Mode = Mode.advise, policy: Policy = HOT, munin: dict[str, str] | None = None,
          vm_cpu: dict[str, float] | None = None, start: bool = True, interval: float = 2.0,
          rounds: int = 0) -> World:
    """`rounds`: how many the test will run; the simulated clock then ends about now, so
    that `ulm status` (which reads the store in real time) sees what the daemon saw."""
    clock = SimClock(time.time() - 2.0 - rounds * interval if rounds else T0)
    cluster = SimCluster(clock, dict(placement), {v: 512.0 for v in placement})
    source = SimSource(cluster, {h: 4 for h in hosts}, {h: 4096.0 for h in hosts},
                       vm_cpu=dict(vm_cpu or {v: 0.5 for v in placement}),
                       vm_vcpus={v: 2 for v in placement})  # 2.0 CPUs on 1 vCPU: bogus
    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp}/ulm.db"),
                 collect=CollectConfig(interval_s=interval, window=4,
                                       source="munin" if munin else "libvirt"),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"test:///{h}",
                                        munin=(munin or {}).get(h, "")) for h in hosts))
    store = Store.open(cfg.store.url, mode="create")
    executor = Executor(cluster, clock, store, Limits(poll_s=1.0),
                        power={h: cluster.power(h) for h in hosts})
    sources: list[MetricsSource] = [HypervisorOnly(source) if munin else source]
    if munin:
        from ulm.collect.munin import MuninSource
        sources.append(MuninSource(munin, timeout_s=2.0))
    d = Daemon(cfg, policy, store, sources, executor, clock, mode)
    if start:
        d.start()
    return World(d, cluster, store, clock, source)
