"""Collection time per host and ULM's own overhead per live migration, on the real lab.

    sudo .venv/bin/python benchmarks/lab_overhead.py [--hosts 3] [--vms-per-host 4] [--moves 6]

Brings a lab up (and down), so it must not run while another lab is up. Prints a table and one
JSON line. Overhead = the executor's wall time for a migration minus the wall time of the bare
`migrateToURI3` call for the same VM between the same hosts (what ULM adds: re-check, journal
writes, thread start, polling, verification). libvirt's job time is printed too: most of a
migration's wall time is libvirt setting up the destination QEMU, not copying memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import libvirt

from ulm.clock import WallClock
from ulm.collect.libvirt_source import LibvirtSource
from ulm.drivers.libvirt import LibvirtHypervisor
from ulm.executor import Executor, Limits, MemoryJournal
from ulm.lab.lab import Lab
from ulm.lab.paths import LabPaths
from ulm.model import Move, Plan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--vms-per-host", type=int, default=4)
    ap.add_argument("--moves", type=int, default=12)
    args = ap.parse_args()
    lab = Lab()
    lab.up(args.hosts)
    try:
        names = [f"labh{i}" for i in range(1, args.hosts + 1)]
        for i, h in enumerate(names, 1):
            for k in range(args.vms_per_host):
                lab.vm_add(f"b{i}-{k}", h, 64, "idle")
        hv = LibvirtHypervisor({h: lab.paths.unix_uri(i) for i, h in enumerate(names, 1)},
                               {h: LabPaths.tcp_uri(i) for i, h in enumerate(names, 1)})
        src = LibvirtSource(hv.conn, names, time.monotonic)
        src.collect(0.0)
        per_host = []
        for _ in range(20):
            for h in names:
                t = time.perf_counter()
                src.read(h, 0.0)
                per_host.append(time.perf_counter() - t)
        ex = Executor(hv, WallClock(), MemoryJournal(), Limits(poll_s=0.05))
        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
                 | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
        bare, walls, jobs = [], [], []
        for k in range(args.moves):
            vm, a, b = "b1-0", names[k % 2], names[(k + 1) % 2]
            t = time.perf_counter()
            if k % 4 < 2:  # alternate: two bare libvirt calls, two through ULM
                hv.conn(a).lookupByName(vm).migrateToURI3(hv.migration_uris[b], {}, flags)
                bare.append(time.perf_counter() - t)
            else:
                res = ex.execute(Plan("s", "p", 0.0, (Move(vm, a, b, "bench"),)), f"p{k}")
                assert res.outcomes[0].status.value == "done", res.outcomes[0].detail
                walls.append(time.perf_counter() - t)
            stats = hv.conn(b).lookupByName(vm).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            jobs.append(stats.get("time_elapsed", 0) / 1000.0)
        out = {
            "hosts": args.hosts, "vms_per_host": args.vms_per_host,
            "collect_ms_per_host_median": round(statistics.median(per_host) * 1000, 2),
            "collect_ms_per_host_p95": round(sorted(per_host)[int(0.95 * len(per_host))] * 1000,
                                             2),
            "libvirt_job_s_median": round(statistics.median(jobs), 3),
            "bare_migrate_call_s_median": round(statistics.median(bare), 3),
            "ulm_migration_s_median": round(statistics.median(walls), 3),
            "ulm_overhead_s_median": round(statistics.median(walls) - statistics.median(bare), 3),
        }
        print("| metric | value |\n|---|---|")
        for key, value in out.items():
            print(f"| {key} | {value} |")
        print(json.dumps(out))
    finally:
        lab.down()


if __name__ == "__main__":
    main()
