"""The API tests' server: a real daemon on SimCluster (advise mode, a hot host), a real SQLite
store filled by its rounds, and the real app under uvicorn on loopback.

    python -m tests.api.server DIR PORT [tls]

DIR holds the token files (viewer.token, operator.token, admin.token), and with `tls` also
cert.pem and key.pem; the store and the server's log go there too; a policy.toml there is the
policy (else `seed`). Started again on the same DIR, it goes on with the same store (a restart).
Runs until SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

from ulm.api import ApiSettings, EventBus, TokenConfig, create_app
from ulm.api.local import DaemonActions
from ulm.api.serve import server
from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HostConfig, PowerConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.execute.recheck import SnapshotCheck
from ulm.executor import Executor, Limits
from ulm.notify.wire import attach, to_bus
from ulm.policy import resolve_policy
from ulm.store import Store

HOSTS = ("h1", "h2", "h3")
ROUNDS = 5
# h1 runs three busy VMs (4.5 of its 4 cores: overloaded), h2 and h3 one quiet VM each.
PLACEMENT = {"web1": "h1", "web2": "h1", "web3": "h1", "db1": "h2", "cache1": "h3"}
CPU = {"web1": 1.6, "web2": 1.5, "web3": 1.4, "db1": 0.3, "cache1": 0.2}
BMC_PASSWORD = "Bmc-s3cret-pw"  # in h2's BMC URL: no answer or page may show it
# How each host is switched (the pages show it; the simulated cluster does the switching)
POWER = {"h2": PowerConfig(driver="redfish", address=f"https://bmc:{BMC_PASSWORD}@127.0.0.1:8443",
                           username="bmc", password=BMC_PASSWORD),
         "h3": PowerConfig(driver="wol", mac="52:54:00:00:00:03")}


def build(tmp: Path) -> Daemon:
    interval = 60.0
    clock = SimClock(float(int(time.time())) - ROUNDS * interval)  # ends near the real clock
    cluster = SimCluster(clock, dict(PLACEMENT), {v: 1024.0 for v in PLACEMENT}, boot_s=60.0)
    source = SimSource(cluster, {h: 4 for h in HOSTS}, {h: 16384.0 for h in HOSTS},
                       vm_cpu=dict(CPU), vm_vcpus={v: 2 for v in PLACEMENT}, host_mem=True)
    own = tmp / "policy.toml"
    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp}/ulm.db"),
                 collect=CollectConfig(interval_s=interval, window=6),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"test:///{h}", power=POWER.get(h))
                             for h in HOSTS),
                 policy=str(own) if own.exists() else "seed")
    store = Store.open(cfg.store.url, mode="create")
    policy = resolve_policy(cfg.policy_ref())
    # as `ulm run`'s: the core's rule and the day's budget, re-checked before each move
    check = SnapshotCheck(lambda: policy, lambda: store.snapshot(
        clock.now(), cfg.collect.window, cfg.collect.stale_s), store.migrations_since,
        clock.now)
    executor = Executor(cluster, clock, store, Limits(poll_s=1.0, power_timeout_s=300.0),
                        power={h: cluster.power(h) for h in HOSTS}, check=check)
    daemon = Daemon(cfg, policy, store, [source], executor, clock, Mode.advise)
    daemon.start()
    for i in range(ROUNDS):
        # rounds 3-5 advise web1 off h1; in the fourth db1 is busy, web1 would not fit on h2
        # and goes to h3: three different advices, each plan superseding the one before
        # (the same advice round after round would keep one plan: `ulm.advice`)
        source.vm_cpu["db1"] = 1.5 if i == 3 else CPU["db1"]
        daemon.run_round()
        clock.sleep(interval)
    return daemon


def main(tmp: Path, port: int, tls: bool) -> None:
    logging.basicConfig(filename=tmp / "server.log", level=logging.INFO,
                        format="%(levelname)s %(name)s %(message)s")
    daemon = build(tmp)
    bus = EventBus(clock=daemon.clock.now, store=daemon.store)  # events outlive a restart
    attach(daemon, [to_bus(bus)])
    settings = ApiSettings(listen=f"127.0.0.1:{port}", tokens=tuple(
        TokenConfig(name=f"{role}-1", role=role, token_file=f"{role}.token")
        for role in ("viewer", "operator", "admin")),
        tls_cert=str(tmp / "cert.pem") if tls else "", tls_key=str(tmp / "key.pem") if tls else "")
    app = create_app(daemon.store, daemon.cfg, settings, DaemonActions(daemon, bus), bus,
                     clock=daemon.clock.now, token_base=tmp)
    # uvicorn re-raises the SIGTERM it caught once it has shut down: ours then ends the
    # process through `finally`, so that the bus writes the events it holds (a clean stop)
    signal.signal(signal.SIGTERM, _exit)
    try:
        server(app, settings).run()
    finally:
        bus.close()


def _exit(*_: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:] == ["tls"])
