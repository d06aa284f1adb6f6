"""The event flow with real components: a daemon on SimCluster (enforce mode, a hot host), a
real SQLite store, the real app under uvicorn on loopback and a real webhook receiver. A
migration that fails reaches the webhook (HMAC-signed, filtered) and the SSE stream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import secrets
from tests.api.conftest import free_port
from tests.notify.conftest import Receiver
from ulm.api import ApiSettings, EventBus, TokenConfig, create_app
from ulm.api.local import DaemonActions
from ulm.api.serve import start_in_thread
from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits
from ulm.notify import NotifyConfig, build
from ulm.notify.events import Event, Kind
from ulm.notify.settings import WebhookConfig
from ulm.notify.targets import signature
from ulm.notify.wire import attach, to_bus
from ulm.policy import resolve_policy
from ulm.store import Store

HOSTS = ("h1", "h2", "h3")
PLACEMENT = {"web1": "h1", "web2": "h1", "web3": "h1", "db1": "h2", "cache1": "h3"}
CPU = {"web1": 1.6, "web2": 1.5, "web3": 1.4, "db1": 0.3, "cache1": 0.2}
TOKEN = secrets.TOKEN + "-flow"


def _daemon(tmp: Path) -> tuple[Daemon, SimCluster]:
    clock = SimClock(float(int(time.time())) - 600)
    cluster = SimCluster(clock, dict(PLACEMENT), {v: 1024.0 for v in PLACEMENT}, boot_s=60.0)
    source = SimSource(cluster, {h: 4 for h in HOSTS}, {h: 16384.0 for h in HOSTS},
                       vm_cpu=dict(CPU), vm_vcpus={v: 2 for v in PLACEMENT})
    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp}/ulm.db"),
                 collect=CollectConfig(interval_s=60.0, window=6),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"test:///{h}") for h in HOSTS))
    store = Store.open(cfg.store.url, mode="create")
    executor = Executor(cluster, clock, store, Limits(poll_s=1.0),
                        power={h: cluster.power(h) for h in HOSTS})
    return Daemon(cfg, resolve_policy("seed"), store, [source], executor, clock,
                  Mode.enforce), cluster


@dataclass
class Served:
    daemon: Daemon
    cluster: SimCluster
    bus: EventBus
    url: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    daemon, cluster = _daemon(tmp_path)
    (tmp_path / "viewer.token").write_text(TOKEN)
    settings = ApiSettings(tokens=(TokenConfig(name="v", role="viewer",
                                               token_file="viewer.token"),))
    bus = EventBus(clock=daemon.clock.now)
    app = create_app(daemon.store, daemon.cfg, settings, DaemonActions(daemon, bus), bus,
                     clock=daemon.clock.now, token_base=tmp_path)
    port = free_port()
    srv, thread = start_in_thread(app, settings, port)
    for _ in range(200):
        if srv.started:
            break
        thread.join(0.05)
    try:
        yield Served(daemon, cluster, bus, f"http://127.0.0.1:{port}")
    finally:
        bus.close()
        srv.should_exit = True
        thread.join(10)


def _stream(url: str, want: str, out: list[dict[str, Any]], ready: threading.Event) -> None:
    """Reads the SSE stream until an event of kind `want` came."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=60) as c, c.stream("GET", "/api/v1/stream") as r:
        ready.set()
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append({"event": kind, **json.loads(line[6:])})
                if kind == want:
                    return


def test_a_failed_migration_reaches_the_webhook_signed_and_the_stream(
        served: Served, receiver: Receiver, tmp_path: Path) -> None:
    key = tmp_path / "hook.key"
    key.write_text(secrets.TOKEN)
    notes = build(NotifyConfig(webhooks=(WebhookConfig(
        url=receiver.url, secret_file=str(key), kinds=("migration_failed", "wake_failed"),
        min_severity="error"),)))
    attach(served.daemon, [to_bus(served.bus), notes.publish])
    for vm in ("web1", "web2", "web3"):  # whichever the policy moves: its migration fails
        served.cluster.fail[vm] = f"injected: {vm} cannot move"
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    reader = threading.Thread(target=_stream, args=(served.url, "migration_failed", seen,
                                                    ready), daemon=True)
    reader.start()
    assert ready.wait(10)
    assert served.daemon.run(rounds=8) == 0
    reader.join(30)
    assert notes.drain(20)
    notes.close()

    failed = [e for e in seen if e["event"] == "migration_failed"]
    assert failed, [e["event"] for e in seen]
    ev = failed[0]["data"]
    assert ev["severity"] == "error" and ev["vm"] in ("web1", "web2", "web3")
    assert "injected" in ev["detail"] and ev["data"]["src"] == "h1"
    kinds = [e["event"] for e in seen]
    # the round's plan and the migration's start come before its failure
    assert kinds.index("plan_made") < kinds.index("migration_started") \
        < kinds.index("migration_failed")

    assert receiver.got, "no webhook POST arrived"
    for headers, body in receiver.got:  # only what the filter asked for, each signed
        assert headers["X-ULM-Signature"] == signature(secrets.TOKEN.encode(), body)
        doc = json.loads(body)
        assert doc["kind"] == "migration_failed" and doc["severity"] == "error"
    first = json.loads(receiver.got[0][1])
    assert first["vm"] == ev["vm"] and first["plan_id"] == ev["plan_id"]

    # the events API shows the started migration (known only as an event) beside the outcome
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        listed = c.get("/api/v1/events", params={"limit": 500}).json()["events"]
    assert any(e["kind"] == "migration_started" and e["subject"] == ev["vm"] for e in listed)
    assert any(e["kind"] == "outcome" and "failed" in e["detail"] for e in listed)


def test_a_failing_sink_never_stops_the_daemon(tmp_path: Path) -> None:
    daemon, cluster = _daemon(tmp_path)
    got: list[Event] = []

    def broken(_: Event) -> None:
        raise RuntimeError("this sink is broken")

    pub = attach(daemon, [broken, got.append])
    assert daemon.run(rounds=8) == 0
    kinds = {e.kind for e in got}
    assert {Kind.round, Kind.plan_made, Kind.migration_started, Kind.migration_done,
            Kind.leader_changed} <= kinds
    lead = next(e for e in got if e.kind is Kind.leader_changed)  # it took the lead first
    assert got.index(lead) == 0 and lead.data["was"] == "" and "epoch 1" in lead.detail
    assert pub.failed == len(got)  # the broken one was called for every event, and survived
    assert cluster.placement["web1"] != "h1" or cluster.placement["web2"] != "h1"


def test_ulm_run_sends_the_daemons_events_to_notify(receiver: Receiver, tmp_path: Path) -> None:
    """The CLI's wiring: `ulm run` with `[notify]` and a host whose libvirt cannot be opened:
    the silent source reaches the webhook as it begins, signed, and nothing else does."""
    import subprocess
    import sys

    key = tmp_path / "hook.key"
    key.write_text(secrets.TOKEN)
    cfg = tmp_path / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/ulm.db"\n[collect]\ninterval_s = 1\n'
                   f'[[notify.webhooks]]\nurl = "{receiver.url}"\nsecret_file = "{key}"\n'
                   'kinds = ["source_silent", "daemon_degraded"]\nmin_severity = "warning"\n'
                   '[[hosts]]\nname = "h1"\nlibvirt_uri = "test:///default"\n'
                   '[[hosts]]\nname = "h2"\nlibvirt_uri = "test:///nonexistent/node.xml"\n')
    ulm = str(Path(sys.executable).parent / "ulm")
    out = subprocess.run([ulm, "run", "--config", str(cfg), "--mode", "observe", "--once"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert receiver.got, out.stderr
    docs = [json.loads(b) for _, b in receiver.got]
    assert {d["kind"] for d in docs} == {"source_silent"}
    assert len(docs) == 1 and docs[0]["severity"] == "warning"
    assert "h2 says nothing" in docs[0]["text"]
    (headers, body), = receiver.got
    assert headers["X-ULM-Signature"] == signature(secrets.TOKEN.encode(), body)
    assert secrets.TOKEN not in out.stdout + out.stderr
