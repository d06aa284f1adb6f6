"""Prometheus (or anything behind its HTTP query API: VictoriaMetrics, Thanos) as a metrics source.

Admins with thousands of hosts already scrape node-exporter and a libvirt exporter; reading
their figures from Prometheus makes ULM's collection cost a handful of instant queries per
round, whatever the number of hosts. Each figure is one PromQL expression (configurable; the
defaults fit prometheus-node-exporter and prometheus-libvirt-exporter), evaluated once for all
hosts, and the answer's series are mapped to ULM's names by label.

Missing data stays missing, never a guess: a host whose exporters are not all `up`, or whose
last scrape is older than `stale_s`, is reported silent (its figures stale); a figure with no
series for a host or VM is `None`; a VM reported by two hosts at once (mid-migration) is left
out of the round rather than placed on either.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.collect.prometheus_config import PrometheusConfig
from ulm.redact import redact

MIB = 1048576.0

# {range} is replaced by the rate window (seconds: a rate needs a few scrapes inside it), {host}
# by the label that names hosts.
DEFAULT_QUERIES: Mapping[str, str] = {
    "host_cpu": ('1 - sum by ({host}) (rate(node_cpu_seconds_total{mode=~"idle|iowait"}'
                 '[{range}s])) / count by ({host}) (node_cpu_seconds_total{mode="idle"})'),
    "host_cores": 'count by ({host}) (node_cpu_seconds_total{mode="idle"})',
    "host_mem_total": "node_memory_MemTotal_bytes",
    "host_mem_used": "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes",
    "vm_cpu": "rate(libvirt_domain_info_cpu_time_seconds_total[{range}s])",
    "vm_vcpus": "libvirt_domain_info_virtual_cpus",
    "vm_mem": "libvirt_domain_info_maximum_memory_bytes",
    "vm_mem_used": "libvirt_domain_info_memory_usage_bytes",
    "up": "up",
}
#: Figures given in bytes by the exporters, in MiB inside ULM.
_BYTES = frozenset({"host_mem_total", "host_mem_used", "vm_mem", "vm_mem_used"})


class PrometheusError(Exception):
    """Prometheus did not answer, or answered something that is not a query result."""


@dataclass(frozen=True)
class PrometheusSettings:
    url: str
    hosts: Mapping[str, str]  # ULM host -> the value of `host_label` that names it
    host_label: str = "instance"
    vm_label: str = "domain"
    queries: Mapping[str, str] = field(default_factory=dict)  # overrides DEFAULT_QUERIES
    rate_s: float = 120.0
    stale_s: float = 180.0
    timeout_s: float = 10.0
    bearer_token: str = ""
    username: str = ""
    password: str = ""
    ca_file: str = ""
    verify_tls: bool = True

    def query(self, figure: str) -> str:
        expr = self.queries.get(figure, DEFAULT_QUERIES[figure])
        return expr.replace("{range}", f"{self.rate_s:g}").replace("{host}", self.host_label)


def label_key(value: str) -> str:
    """`10.77.0.1:9100` and `10.77.0.1:9177` are the same host: the port names the exporter."""
    host, sep, port = value.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else value


class PrometheusSource:
    name = "prometheus"

    def __init__(self, settings: PrometheusSettings) -> None:
        self.s = settings
        self._by_key = {label_key(v): h for h, v in settings.hosts.items()}
        headers = {"Accept": "application/json"}
        if settings.bearer_token:
            headers["Authorization"] = f"Bearer {settings.bearer_token}"
        auth = (settings.username, settings.password) if settings.username else None
        verify: bool | ssl.SSLContext = settings.verify_tls
        if settings.ca_file:  # a private CA: trust it (and only it) for this server
            verify = ssl.create_default_context(cafile=settings.ca_file)
        self._http = httpx.Client(base_url=settings.url.rstrip("/"), headers=headers, auth=auth,
                                  verify=verify, timeout=settings.timeout_s,
                                  follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def instant(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        """One instant query: (labels, value) per series; NaN/Inf samples are left out."""
        try:
            r = self._http.get("/api/v1/query", params={"query": expr, "time": f"{at:.3f}"})
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{type(exc).__name__}: {exc}") from None
        try:
            doc = r.json()
        except ValueError:
            raise PrometheusError(f"HTTP {r.status_code}, not a Prometheus answer") from None
        if r.status_code != 200 or doc.get("status") != "success":
            raise PrometheusError(f"HTTP {r.status_code}: {doc.get('error', 'query failed')}")
        data = doc.get("data", {})
        if data.get("resultType") != "vector":
            raise PrometheusError(f"query {expr!r} is not an instant vector")
        out: list[tuple[dict[str, str], float]] = []
        for item in data.get("result", []):
            try:
                value = float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if math.isfinite(value):
                out.append((dict(item.get("metric", {})), value))
        return out

    def _host_of(self, labels: Mapping[str, str]) -> str | None:
        value = labels.get(self.s.host_label)
        return None if value is None else self._by_key.get(label_key(value))

    def _per_host(self, figure: str, at: float) -> dict[str, float]:
        out: dict[str, float] = {}
        scale = 1 / MIB if figure in _BYTES else 1.0
        for labels, value in self.instant(self.s.query(figure), at):
            host = self._host_of(labels)
            if host is not None:
                out[host] = value * scale
        return out

    def _per_vm(self, figure: str, at: float) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        scale = 1 / MIB if figure in _BYTES else 1.0
        for labels, value in self.instant(self.s.query(figure), at):
            host, vm = self._host_of(labels), labels.get(self.s.vm_label)
            if host is not None and vm:
                out[(vm, host)] = value * scale
        return out

    def _health(self, at: float) -> dict[str, str]:
        """host -> why its figures cannot be trusted ("" = fresh and every exporter up)."""
        up: dict[str, list[float]] = {}
        for labels, value in self.instant(self.s.query("up"), at):
            host = self._host_of(labels)
            if host is not None:
                up.setdefault(host, []).append(value)
        scraped: dict[str, float] = {}
        for labels, ts in self.instant(f"timestamp({self.s.query('up')})", at):
            host = self._host_of(labels)
            if host is not None:
                scraped[host] = min(scraped.get(host, ts), ts)
        out: dict[str, str] = {}
        for host in self.s.hosts:
            if host not in up:
                out[host] = "no series in Prometheus"
            elif min(up[host]) < 1:
                out[host] = f"{sum(1 for v in up[host] if v < 1)} exporter(s) down"
            elif at - scraped.get(host, -math.inf) > self.s.stale_s:
                out[host] = f"last scraped {at - scraped.get(host, 0.0):.0f} s ago"
            else:
                out[host] = ""
        return out

    def collect(self, now: float) -> Collection:
        try:
            return self._collect(now)
        except PrometheusError as exc:
            why = redact(f"Prometheus at {self.s.url}: {exc}")
            return Collection(now, tuple(HostReading(h, now, False, why, source=self.name)
                                         for h in self.s.hosts))

    def _collect(self, now: float) -> Collection:
        health = self._health(now)
        cpu, cores = self._per_host("host_cpu", now), self._per_host("host_cores", now)
        total, used = self._per_host("host_mem_total", now), self._per_host("host_mem_used", now)
        hosts: list[HostReading] = []
        for h in self.s.hosts:
            if health[h]:
                hosts.append(HostReading(h, now, False, health[h], source=self.name))
                continue
            hosts.append(HostReading(h, now, True, "", int(cores.get(h, 0)), total.get(h, 0.0),
                                     _fraction(cpu.get(h)), used.get(h), None, self.name))
        fresh = {r.host for r in hosts if r.ok}
        vcpus = self._per_vm("vm_vcpus", now)
        vm_cpu, mem = self._per_vm("vm_cpu", now), self._per_vm("vm_mem", now)
        mem_used = self._per_vm("vm_mem_used", now)
        seen: dict[str, list[str]] = {}
        for vm, host in vcpus:
            seen.setdefault(vm, []).append(host)
        vms: list[VMReading] = []
        for vm, on in sorted(seen.items()):
            if len(on) != 1 or on[0] not in fresh:
                continue  # mid-migration (two hosts) or a stale host: no figure, not a guess
            key = (vm, on[0])
            vms.append(VMReading(vm, on[0], now, max(1, int(vcpus[key])), mem.get(key, 0.0),
                                 vm_cpu.get(key), mem_used.get(key)))
        return Collection(now, tuple(hosts), tuple(vms))


def _fraction(value: float | None) -> float | None:
    return None if value is None else min(max(value, 0.0), 1.0)


def wait_ready(url: str, timeout_s: float = 30.0, **kw: Any) -> None:
    """Blocks until a Prometheus server answers its readiness endpoint (tests, `ulm doctor`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url.rstrip('/')}/-/ready", timeout=2, trust_env=False,
                         **kw).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise PrometheusError(redact(f"{url} is not ready after {timeout_s:.0f} s"))
        time.sleep(0.2)


def from_config(pc: PrometheusConfig, hosts: Mapping[str, str], stale_s: float,
                timeout_s: float) -> PrometheusSource:
    """The source for `[collect.prometheus]`; `hosts` maps ULM's names to label values."""
    return PrometheusSource(PrometheusSettings(
        url=pc.url, hosts=hosts, host_label=pc.host_label, vm_label=pc.vm_label,
        queries=pc.queries, rate_s=pc.rate_s, stale_s=stale_s, timeout_s=timeout_s,
        bearer_token=pc.token(), username=pc.username, password=pc.password(),
        ca_file=pc.ca_file, verify_tls=pc.verify_tls))
