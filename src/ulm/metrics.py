"""ULM's own Prometheus metrics (`ulm run --metrics ADDR:PORT`): what the daemon sees and does.

A separate registry, so that tests and several daemons in one process never share counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ulm.address import parse_hostport
from ulm.errors import UlmError
from ulm.executor import PlanResult
from ulm.model import Move, Plan
from ulm.snapshot import Snapshot


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.rounds = Counter("ulm_rounds", "Scheduling rounds run", registry=r)
        self.host_cpu = Gauge("ulm_host_cpu_ratio", "Host CPU in use (fraction)", ["host"],
                              registry=r)
        self.hosts_on = Gauge("ulm_hosts_on", "Hosts powered on", registry=r)
        self.vms = Gauge("ulm_vms", "VMs seen", registry=r)
        self.plan_actions = Counter("ulm_planned_actions", "Actions planned", ["kind"],
                                    registry=r)
        self.problems = Counter("ulm_plan_problems", "Problems reported by plans", registry=r)
        self.outcomes = Counter("ulm_action_outcomes", "Executed actions by outcome",
                                ["kind", "status"], registry=r)
        self.migration_s = Histogram("ulm_migration_seconds", "Live migration wall time",
                                     buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600), registry=r)

    def observe_snapshot(self, snap: Snapshot) -> None:
        self.rounds.inc()
        used = snap.vm_cpu[snap.vm_host >= 0]
        per_host = [0.0] * snap.n_hosts
        for h, cpu in zip(snap.vm_host[snap.vm_host >= 0].tolist(), used.tolist(), strict=True):
            per_host[h] += cpu
        for i, name in enumerate(snap.host_names):
            self.host_cpu.labels(name).set(per_host[i] / float(snap.host_cpu[i]))
        self.hosts_on.set(int(snap.host_on.sum()))
        self.vms.set(snap.n_vms)

    def observe_plan(self, plan: Plan) -> None:
        for a in plan.actions:
            self.plan_actions.labels(a.kind).inc()
        self.problems.inc(len(plan.problems))

    def observe_result(self, result: PlanResult) -> None:
        for o in result.outcomes:
            self.outcomes.labels(o.action.kind, o.status.value).inc()
            if isinstance(o.action, Move) and o.status.value == "done":
                self.migration_s.observe(o.finished_at - o.started_at)

    def serve(self, address: str) -> None:
        """Serves /metrics on `host:port` (`:port` is 127.0.0.1: never exposed by accident).
        A bad address or a port in use is a `UlmError` naming it."""
        host, port = parse_hostport(address, "--metrics", default_host="127.0.0.1")
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:  # in use, not an address of this machine, not resolvable
            why = exc.strerror or str(exc)
            raise UlmError(f"--metrics {address}: cannot serve /metrics there: {why}") from None
