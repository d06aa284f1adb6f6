"""libvirt as a metrics source: node CPU/memory and per-domain stats in one bulk call per host.

Hosts are read side by side on a bounded pool of threads, each with its own deadline: a dead or
mute host (one that accepts the connection and never answers: `libvirt.open` itself has no
deadline) is reported silent and costs the round at most its deadline, once, however many
hosts are mute. A host whose previous read has not ended yet is not asked again (no pile of
stuck threads); it stays silent until that read returns.

Per-domain CPU is a counter (`cpu.time`, ns) that restarts when a VM migrates (a new QEMU process
on the destination) or its host reboots. Deltas are therefore keyed by (host, domain id, UUID):
the first reading of a VM on a new host has no previous value and gives *no* CPU figure rather
than a spike or a guess.

A VM's labels and required CPU features come from its domain XML (`ulm.collect.domain_xml`),
which the bulk stats call does not carry: one `XMLDesc` per domain. Asked on first sight of
the domain on a host (a migration is a new sight) and again every `details_every` rounds, so
that a label set with `virsh metadata` is seen within that many rounds, instead of 10,000 XML
fetches every round. The host's CPU (`getCapabilities`) is read once per connection: it does
not change while the host is up.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import libvirt

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.collect.cpu import expanded_features, host_cpu_element
from ulm.collect.cpu import host_cpu as parse_host_cpu
from ulm.collect.domain_xml import domain_details
from ulm.drivers.base import run_state
from ulm.drivers.libvirt import domain_state
from ulm.transport import describe

_STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
          | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU)
# NOWAIT: a domain busy in a job (the incoming side of a live migration holds one for its
# whole length) would otherwise make the call wait for the job lock, and the host would miss
# its collection deadline for as long as a migration into it runs; with NOWAIT libvirt leaves
# out only the figures it cannot read at once (the balloon), see `_given_kib`.
_ACTIVE = (libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
           | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)

Key = tuple[str, int, str]  # host, domain id, uuid


class LibvirtSource:
    name = "libvirt"

    def __init__(self, conn: Callable[[str], Any], hosts: list[str],
                 clock: Callable[[], float], host_cpu: bool = True, timeout_s: float = 10.0,
                 workers: int = 32, uris: Mapping[str, str] | None = None,
                 details_every: int = 30) -> None:
        self.conn = conn  # host -> open libvirt connection (the hypervisor driver's)
        self.uris = dict(uris or {})  # host -> its URI, to say how a connection failed
        self.hosts = hosts
        self.host_cpu = host_cpu  # False when another source (munin) reports host CPU
        self.clock = clock  # monotonic-ish seconds for CPU deltas
        self.timeout_s = timeout_s  # per host and round
        self._node: dict[str, tuple[float, float]] = {}  # host -> (busy ns, total ns)
        self._dom: dict[Key, tuple[float, float]] = {}  # -> (cpu.time ns, taken at s)
        self.details_every = max(1, details_every)  # rounds between domain XML reads
        #: -> (labels, required CPU features, rounds until the next read)
        self._details: dict[Key, tuple[dict[str, str], frozenset[str], int]] = {}
        self._caps: dict[str, tuple[Any, str, frozenset[str]]] = {}  # host -> (conn, cpu)
        self._lock = threading.Lock()  # the counters above, shared by the pool's threads
        self._pool = cf.ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts))),
                                           thread_name_prefix="collect")
        self._pending: dict[str, cf.Future[tuple[HostReading, list[VMReading]]]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def collect(self, now: float) -> Collection:
        asked: dict[str, cf.Future[tuple[HostReading, list[VMReading]]]] = {}
        busy: dict[str, str] = {}
        for host in self.hosts:
            old = self._pending.get(host)
            if old is not None and not old.done():
                busy[host] = f"no answer yet to the read started {self.timeout_s:.0f}+ s ago"
                continue
            asked[host] = self._pending[host] = self._pool.submit(self._guarded, host, now)
        deadline = time.monotonic() + self.timeout_s
        hosts: list[HostReading] = []
        vms: list[VMReading] = []
        for host in self.hosts:
            fut = asked.get(host)
            if fut is None:
                hosts.append(HostReading(host, now, False, busy[host], source=self.name))
                continue
            try:
                reading, domains = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except cf.TimeoutError:
                reading, domains = HostReading(host, now, False, f"no answer within "
                                               f"{self.timeout_s:g} s", source=self.name), []
            else:
                self._pending.pop(host, None)
            hosts.append(reading)
            vms.extend(domains)
        return Collection(now, tuple(hosts), tuple(vms))

    def _guarded(self, host: str, now: float) -> tuple[HostReading, list[VMReading]]:
        try:
            self.conn(host)  # connect first: a failure here is the transport's (ssh, TLS)
        except libvirt.libvirtError as exc:
            msg = str(exc.get_error_message() or exc)
            return HostReading(host, now, False, describe(self.uris[host], msg)
                               if host in self.uris else msg, source=self.name), []
        try:
            return self.read(host, now)
        except libvirt.libvirtError as exc:
            return HostReading(host, now, False, str(exc.get_error_message() or exc),
                               source=self.name), []

    def read(self, host: str, now: float) -> tuple[HostReading, list[VMReading]]:
        c = self.conn(host)
        info = c.getInfo()  # [model, memory MiB, cpus, mhz, nodes, sockets, cores, threads]
        cores = int(info[2])
        try:
            mem = c.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise
            mem = {"total": float(info[1]) * 1024}  # size known, use unknown: not a guess
        total_kib = float(mem.get("total", 0))
        free_kib = float(mem.get("free", 0)) + float(mem.get("buffers", 0)) + float(
            mem.get("cached", 0))
        used = (total_kib - free_kib) / 1024 if "free" in mem else None
        cpu = self._node_cpu(host, c) if self.host_cpu else None
        model, features = self._host_cpu(host, c)
        reading = HostReading(host, now, True, "", cores, total_kib / 1024, cpu, used, None,
                              self.name, cpu_model=model, cpu_features=features)
        t = self.clock()
        records = c.getAllDomainStats(_STATS, _ACTIVE)
        details = [self._domain_details(host, rec[0]) for rec in records]  # I/O: unlocked
        with self._lock:
            domains = [self._vm(host, rec, t, now, d)
                       for rec, d in zip(records, details, strict=True)]
            # Forget counters of domains gone from this host (migrated away, stopped).
            seen = {(host, int(d.ID()), str(d.UUIDString())) for d, _ in records}
            for table in (self._dom, self._details):
                for key in [k for k in table if k[0] == host and k not in seen]:
                    del table[key]
        return reading, domains

    def _host_cpu(self, host: str, c: Any) -> tuple[str, frozenset[str]]:
        """Once per connection (a reconnect may be to a host rebooted on another CPU)."""
        known = self._caps.get(host)
        if known is None or known[0] is not c:
            caps = c.getCapabilities()
            model, features = parse_host_cpu(caps)
            element = host_cpu_element(caps)
            if element is not None:
                # the model's own features too, not only those beyond it; a driver without
                # baselineCPU: the listed ones
                with contextlib.suppress(libvirt.libvirtError):
                    features |= expanded_features(c.baselineCPU(
                        [element], libvirt.VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES))
            known = self._caps[host] = (c, model, features)
        return known[1], known[2]

    def _domain_details(self, host: str, dom: Any) -> tuple[dict[str, str], frozenset[str]]:
        key: Key = (host, int(dom.ID()), str(dom.UUIDString()))
        with self._lock:
            known = self._details.get(key)
            if known is not None and known[2] > 0:
                self._details[key] = (known[0], known[1], known[2] - 1)
                return known[0], known[1]
        try:
            labels, features = domain_details(dom.XMLDesc(0))
        except libvirt.libvirtError:  # gone between the stats and this call: asked next round
            return (known[0], known[1]) if known is not None else ({}, frozenset())
        with self._lock:
            self._details[key] = (labels, features, self.details_every - 1)
        return labels, features

    def _node_cpu(self, host: str, c: Any) -> float | None:
        s = c.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)
        busy = float(s.get("kernel", 0)) + float(s.get("user", 0))
        total = busy + float(s.get("idle", 0)) + float(s.get("iowait", 0))
        with self._lock:
            prev = self._node.get(host)
            self._node[host] = (busy, total)
        if prev is None or total <= prev[1]:
            return None
        return min(max((busy - prev[0]) / (total - prev[1]), 0.0), 1.0)

    def _vm(self, host: str, rec: tuple[Any, Mapping[str, Any]], t: float, now: float,
            details: tuple[dict[str, str], frozenset[str]]) -> VMReading:
        dom, stats = rec
        key: Key = (host, int(dom.ID()), str(dom.UUIDString()))
        cpu_ns = float(stats.get("cpu.time", 0))
        prev = self._dom.get(key)
        self._dom[key] = (cpu_ns, t)
        cpu = None
        if prev is not None and t > prev[1] and cpu_ns >= prev[0]:
            cpu = (cpu_ns - prev[0]) / 1e9 / (t - prev[1])
        given_kib = _given_kib(dom, stats)
        used = _used_kib(stats)
        # VIR_DOMAIN_STATS_STATE: a paused guest's cpu.time stands still, and it must not
        # look like an idle running one (which the scheduler would happily move)
        state = run_state(domain_state(int(stats.get("state.state", libvirt.VIR_DOMAIN_RUNNING)),
                                       int(stats.get("state.reason", 0))))
        return VMReading(dom.name(), host, now, int(stats.get("vcpu.current", 1) or 1),
                         given_kib / 1024, cpu, None if used is None else used / 1024,
                         key[2], state, details[0], details[1])


def _given_kib(dom: Any, stats: Mapping[str, Any]) -> float:
    """The guest's memory size: the balloon's figure, or, when NOWAIT left it out (the
    domain was busy in a job), its definition's maximum, which needs no monitor call."""
    if "balloon.maximum" in stats or "balloon.current" in stats:
        return float(stats.get("balloon.maximum", stats.get("balloon.current", 0)))
    return float(dom.maxMemory())


def _used_kib(stats: Mapping[str, Any]) -> float | None:
    """Guest memory in use: from balloon stats when the guest reports them, else QEMU's RSS."""
    if "balloon.available" in stats and "balloon.unused" in stats:
        return float(stats["balloon.available"]) - float(stats["balloon.unused"])
    if "balloon.rss" in stats:
        return float(stats["balloon.rss"])
    return None
