"""ULM's /metrics, scraped over HTTP on loopback."""

from __future__ import annotations

import socket
import urllib.request

from tests.builders import SEED, host, policy, snap, vm
from ulm.executor import Outcome, PlanResult, Status
from ulm.metrics import Metrics
from ulm.scheduler import schedule


def test_metrics_are_served_and_reflect_the_round() -> None:
    m = Metrics()
    s = snap([host("h1"), host("h2")], [vm("a", "h1", 4.0), vm("b", "h1", 3.0)])
    m.observe_snapshot(s)
    plan = schedule(s, policy(SEED.replace("sustain = 3", "sustain = 1")), 0.0)
    m.observe_plan(plan)
    m.observe_result(PlanResult("p", tuple(Outcome(a, Status.DONE, "", 0.0, 2.5)
                                           for a in plan.actions)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    m.serve(f"127.0.0.1:{port}")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'ulm_host_cpu_ratio{host="h1"} 0.875' in body
    assert 'ulm_planned_actions_total{kind="move"} 1.0' in body
    assert 'ulm_action_outcomes_total{kind="move",status="done"} 1.0' in body
    assert "ulm_migration_seconds_count 1.0" in body
