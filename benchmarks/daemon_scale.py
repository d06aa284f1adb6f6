"""The daemon's own round at scale: the real Daemon, store and scheduler, SimCluster in place of
libvirt, the store filled with history first.

    .venv/bin/python benchmarks/daemon_scale.py --hosts 100 --hosts 1000 --vms-per-host 10 \
        [--rounds 5] [--history-s 86400] [--store-url postgresql+psycopg://...] [--format json]

Prints one JSON line per size: hosts, vms, round_s, collect_s, store_s, snapshot_s, schedule_s
(medians over the rounds), peak_rss_mb (of this process, so run one size per process when that
figure matters) and db_mb. The history is written straight into the samples table (one row per
host and VM every `interval` seconds for `--history-s`): it is what a store looks like after a
day, without a day's wait. Load: VMs idle at 20-60 % of one vCPU; one host in ten is hot.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, text

from ulm import daemon as daemon_mod
from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits
from ulm.policy import resolve_policy
from ulm.store import Store
from ulm.store import schema as t

INTERVAL_S = 60.0
CORES, HOST_MIB, VCPUS, VM_MIB = 32, 262144.0, 2, 4096.0


class Timer:
    """Wraps a callable and adds up the seconds spent in it (reset per round)."""

    def __init__(self) -> None:
        self.spent = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - t0
        return timed


def _open(url: str) -> Store:
    try:
        return Store.open(url, mode="create")
    except TypeError:  # a store without open modes (older code, for before/after runs)
        return Store.open(url)  # type: ignore[call-arg]


def fill_history(store: Store, hosts: list[str], placement: dict[str, str], start: float,
                 end: float, rng: np.random.Generator) -> int:
    """Raw samples every INTERVAL_S in [start, end): bulk inserts, 200k rows at a time."""
    n = 0
    batch: list[dict[str, Any]] = []
    vms = sorted(placement)
    ts = start
    while ts < end:
        cpu = rng.uniform(0.2, 0.6, len(vms))
        batch.extend(dict(ts=ts, kind="host", name=h, host=h, cpu=0.4, mem_mib=None,
                          resolution_s=0.0, source="libvirt") for h in hosts)
        batch.extend(dict(ts=ts, kind="vm", name=v, host=placement[v], cpu=float(c),
                          mem_mib=None, resolution_s=0.0, source="libvirt")
                     for v, c in zip(vms, cpu, strict=True))
        if len(batch) >= 200_000:
            with store.engine.begin() as c:
                c.execute(insert(t.samples), batch)
            n += len(batch)
            batch = []
        ts += INTERVAL_S
    if batch:
        with store.engine.begin() as c:
            c.execute(insert(t.samples), batch)
        n += len(batch)
    return n


def db_mb(store: Store, url: str) -> float:
    if store.engine.dialect.name == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    with store.engine.connect() as c:
        return float(c.execute(text("SELECT pg_database_size(current_database())"))
                     .scalar_one()) / 2**20


def run(n_hosts: int, per_host: int, rounds: int, history_s: float, url: str | None,
        policy_name: str) -> dict[str, object]:
    rng = np.random.default_rng(7)
    tmp = Path(tempfile.mkdtemp(prefix="ulm-scale-"))
    url = url or f"sqlite:///{tmp}/ulm.db"
    hosts = [f"h{i:05d}" for i in range(n_hosts)]
    placement = {f"vm{i:06d}": hosts[i % n_hosts] for i in range(n_hosts * per_host)}
    start = time.time() - history_s
    clock = SimClock(start + history_s)
    cluster = SimCluster(clock, placement, {v: VM_MIB for v in placement}, bandwidth_mib_s=1e4)
    source = SimSource(cluster, {h: CORES for h in hosts}, {h: HOST_MIB for h in hosts},
                       vm_vcpus={v: VCPUS for v in placement})
    cfg = Config(store=StoreConfig(url=url),
                 collect=CollectConfig(interval_s=INTERVAL_S, window=30),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"test:///{h}") for h in hosts))
    store = _open(url)
    filled = fill_history(store, hosts, placement, start, start + history_s, rng)
    executor = Executor(cluster, clock, store, Limits(max_concurrent=8, poll_s=1.0),
                        power={h: cluster.power(h) for h in hosts})
    d = Daemon(cfg, resolve_policy(policy_name), store, [source], executor, clock, Mode.advise)
    d.start()
    timers = {k: Timer() for k in ("collect", "store", "snapshot", "schedule")}
    source.collect = timers["collect"].wrap(source.collect)  # type: ignore[method-assign]
    store.add_collection = timers["store"].wrap(store.add_collection)  # type: ignore[method-assign]
    store.snapshot = timers["snapshot"].wrap(store.snapshot)  # type: ignore[method-assign]
    daemon_mod.schedule = timers["schedule"].wrap(daemon_mod.schedule)  # type: ignore[attr-defined]
    hot = hosts[::10]
    per_round: dict[str, list[float]] = {k: [] for k in ("round", *timers)}
    for k in range(rounds):
        clock.advance_to(start + history_s + k * INTERVAL_S)
        cpu = rng.uniform(0.2, 0.6, len(placement)) * VCPUS / 2
        source.vm_cpu = dict(zip(sorted(placement), (float(c) for c in cpu), strict=True))
        for h in hot:  # one host in ten runs hot: its VMs at full speed
            for v in cluster.list_vms(h):
                source.vm_cpu[v] = float(VCPUS)
        for tm in timers.values():
            tm.spent = 0.0
        t0 = time.perf_counter()
        d.run_round()
        per_round["round"].append(time.perf_counter() - t0)
        for name, tm in timers.items():
            per_round[name].append(tm.spent)
    out: dict[str, object] = {"hosts": n_hosts, "vms": len(placement),
                              "engine": store.engine.dialect.name, "history_rows": filled}
    out.update({f"{k}_s": round(statistics.median(v), 3) for k, v in per_round.items()})
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["db_mb"] = round(db_mb(store, url), 1)
    store.close()
    return out


def main() -> None:
    logging.getLogger("ulm").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--hosts", type=int, action="append", required=True)
    ap.add_argument("--vms-per-host", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--history-s", type=float, default=86400.0)
    ap.add_argument("--store-url", default=None, help="default: a fresh SQLite file")
    ap.add_argument("--policy", default="seed")
    ap.add_argument("--format", choices=("json", "table"), default="json")
    args = ap.parse_args()
    for n in args.hosts:
        row = run(n, args.vms_per_host, args.rounds, args.history_s, args.store_url,
                  args.policy)
        print(json.dumps(row) if args.format == "json" else
              "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    sys.exit(main())
