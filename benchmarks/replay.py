"""How long `ulm replay` takes on a week of recording: reading the store, and one run per policy.

    .venv/bin/python benchmarks/replay.py [--hosts 20] [--vms 200] [--days 7] [--every 300]

Fills a fresh SQLite store with `--days` of readings every `--every` seconds: `--hosts` hosts
of 16 cores and 64 GiB, `--vms` VMs of 2 vCPUs and 4 GiB with a daily wave of CPU (a third
of them busy by day, idle by night). Then times `ulm.replay.load` + `measure` (the store
read, bucketing, what really happened) and `replay_all` with `seed`, `npa` and `power-save`,
and prints the figures.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.policy import resolve_policy
from ulm.replay.load import GapRule, load
from ulm.replay.recorded import measure
from ulm.replay.run import replay_all
from ulm.sim.engine import load_compiled_sim
from ulm.store import Store, schema


def fill(store: Store, hosts: int, vms: int, days: int, every: float, start: float) -> int:
    """The inventory through `add_collection`; the samples in bulk (the daemon's write path is
    not what is measured here, and would take minutes for a week)."""
    steps = int(days * 86400 / every)
    rows: list[dict[str, object]] = []
    for k in range(steps):
        ts = start + k * every + 1.0
        day = 0.5 + 0.5 * math.sin(2 * math.pi * (ts % 86400) / 86400)
        used = [0.0] * hosts
        for v in range(vms):
            busy = 2.0 * (0.1 + 0.8 * day if v % 3 == 0 else 0.15)
            used[v % hosts] += busy
            rows.append({"ts": ts, "kind": "vm", "name": f"vm{v:04d}",
                         "host": f"host{v % hosts:03d}", "cpu": busy, "mem_mib": 2048.0})
        rows += [{"ts": ts, "kind": "host", "name": f"host{h:03d}", "host": "",
                  "cpu": min(used[h] / 16, 1.0), "mem_mib": 32768.0} for h in range(hosts)]
        if k == 0:
            store.add_collection(Collection(ts, tuple(
                HostReading(f"host{h:03d}", ts, True, "", 16, 65536.0, 0.0, 32768.0, None,
                            "libvirt") for h in range(hosts)), tuple(
                VMReading(f"vm{v:04d}", f"host{v % hosts:03d}", ts, 2, 4096.0, 0.0, 2048.0)
                for v in range(vms))))
    with store.engine.begin() as c:
        c.execute(sa.delete(schema.samples))
        c.execute(sa.insert(schema.samples), rows)
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--vms", type=int, default=200)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--every", type=float, default=300.0)
    args = ap.parse_args()
    load_compiled_sim()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ulm.db'}"
        store = Store.open(url, mode="create")
        start = (time.time() // 300) * 300 - args.days * 86400 - 600
        t = time.perf_counter()
        rows = fill(store, args.hosts, args.vms, args.days, args.every, start)
        print(f"filled {rows:,} samples in {time.perf_counter() - t:.1f} s")
        store.close()
        store = Store.open(url, mode="read")
        t = time.perf_counter()
        rec = load(store, start, start + args.days * 86400, GapRule.hold)
        recorded = measure(store, rec)
        store.close()
        print(f"read: {rec.buckets} buckets x {rec.trace.n_vms} VMs on {len(rec.host_names)} "
              f"hosts in {time.perf_counter() - t:.2f} s; recorded {recorded.energy_kwh:.1f} kWh")
        pols = [resolve_policy(p) for p in ("seed", "npa", "power-save")]
        t = time.perf_counter()
        runs = replay_all(rec, pols, 120.0)
        print(f"replay of {len(pols)} policies: {time.perf_counter() - t:.2f} s")
        for r in runs:
            print(f"  {r.policy:12s} {r.wall_s:6.2f} s  {r.migrations:6d} migrations  "
                  f"{r.energy_kwh:8.1f} kWh  SLATAH {r.slatah:.3%}  "
                  f"power-offs {r.extra.get('power_offs', 0)}")


if __name__ == "__main__":
    main()
