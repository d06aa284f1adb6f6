"""The store's write of one collection round alone: CPU and wall seconds of `add_collection`.

    PYTHONPATH=src .venv/bin/python benchmarks/store_write.py --hosts 1000 \
        [--store sqlite:////tmp/w.db | postgresql+psycopg://...] [--rounds 7]

Rounds of a steady cluster (10 VMs per host, nothing but the time changes) into the store the
URL names (an empty one: a PostgreSQL database made beforehand, or a new SQLite file); prints
one JSON line: the first round (every inventory row is new), then the medians of the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.store import Store


def collection(hosts: list[str], per_host: int, ts: float) -> Collection:
    return Collection(ts, tuple(HostReading(h, ts, True, "", 32, 262144.0, 0.4, 1000.0, None,
                                            "libvirt") for h in hosts),
                      tuple(VMReading(f"vm{i:06d}", hosts[i % len(hosts)], ts, 2, 4096.0, 0.3)
                            for i in range(per_host * len(hosts))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms-per-host", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--store", default="sqlite:////tmp/ulm-store-write.db")
    args = ap.parse_args()
    store = Store.open(args.store, mode="create")
    hosts = [f"h{i:05d}" for i in range(args.hosts)]
    cpu, wall = [], []
    for k in range(args.rounds):
        col = collection(hosts, args.vms_per_host, 1000.0 + 60 * k)
        t0, c0 = time.perf_counter(), time.process_time()
        store.add_collection(col, managed=lambda vm: vm.startswith("vm"))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    store.close()
    print(json.dumps({"hosts": args.hosts, "vms": args.hosts * args.vms_per_host,
                      "first_cpu_s": round(cpu[0], 3), "first_wall_s": round(wall[0], 3),
                      "cpu_s": round(statistics.median(cpu[1:] or cpu), 3),
                      "wall_s": round(statistics.median(wall[1:] or wall), 3),
                      "load_avg": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
