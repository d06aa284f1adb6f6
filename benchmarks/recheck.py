"""The executor's re-check of one move right before it starts, at scale.

    .venv/bin/python benchmarks/recheck.py [--hosts 1000] [--vms 10000] [--moves 200]
        [--in-flight 20] [--policy ulm] [--format json]

Prints one JSON line: per-move milliseconds (median, p95, max) of the re-check the executor
runs (`SnapshotCheck`: the move's hosts cut from the round's snapshot, the migrations in
flight laid over it, the core's `check_move` on that), and for comparison `check_move` on the
whole snapshot (what each move cost before, *without* the store read of a whole snapshot that
came with it). Target: <= 50 ms a move at 1,000 hosts / 10,000 VMs. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from ulm.execute.recheck import SnapshotCheck
from ulm.model import HostState, Move
from ulm.policy import resolve_policy
from ulm.scheduler import check_move
from ulm.scheduler.core import load_compiled
from ulm.snapshot import Snapshot


def synthetic(n_hosts: int, n_vms: int, seed: int = 1) -> Snapshot:
    """Hosts of 32 cores / 256 GiB, VMs of 2 vCPUs / 4 GiB at 20-60 % with 30 samples."""
    rng = np.random.default_rng(seed)
    hosts = rng.integers(0, n_hosts, n_vms)
    size = np.full(n_vms, 2.0)
    hist = rng.uniform(0.2, 0.6, (n_vms, 30)) * size[:, None]
    return Snapshot(
        taken_at=1e6, host_names=tuple(f"h{i}" for i in range(n_hosts)),
        host_cpu=np.full(n_hosts, 32.0), host_mem=np.full(n_hosts, 262144.0),
        host_cores=np.full(n_hosts, 32, np.int64), host_state=(HostState.ON,) * n_hosts,
        vm_names=tuple(f"v{i}" for i in range(n_vms)), vm_host=hosts, vm_cpu_size=size,
        vm_mem_size=np.full(n_vms, 4096.0), vm_cpu=hist[:, -1].copy(),
        vm_mem=np.full(n_vms, 2048.0), vm_history=hist,
        vm_vcpus=np.full(n_vms, 2, np.int64))


def moves(snap: Snapshot, n: int, seed: int = 2) -> list[Move]:
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(snap.n_vms, n, replace=False).tolist():
        src = int(snap.vm_host[i])
        dst = int((src + 1 + rng.integers(0, snap.n_hosts - 1)) % snap.n_hosts)
        out.append(Move(snap.vm_names[i], snap.host_names[src], snap.host_names[dst], "bench"))
    return out


def ms(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"median_ms": round(statistics.median(s) * 1e3, 3),
            "p95_ms": round(s[int(0.95 * (len(s) - 1))] * 1e3, 3),
            "max_ms": round(s[-1] * 1e3, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--in-flight", type=int, default=20)
    ap.add_argument("--policy", default="ulm")
    ap.add_argument("--format", choices=["json"], default="json")
    args = ap.parse_args()
    load_compiled()
    policy = resolve_policy(args.policy)
    snap = synthetic(args.hosts, args.vms)
    todo = moves(snap, args.moves + args.in_flight)
    flying, todo = todo[: args.in_flight], todo[args.in_flight:]
    check = SnapshotCheck(lambda: policy, lambda: snap)
    check.feed(snap)
    check(todo[0], flying)  # warm-up
    cut, whole = [], []
    for m in todo:
        t0 = time.perf_counter()
        check(m, flying)
        cut.append(time.perf_counter() - t0)
    for m in todo[: max(args.moves // 10, 5)]:
        t0 = time.perf_counter()
        check_move(snap, policy, m)
        whole.append(time.perf_counter() - t0)
    print(json.dumps({"hosts": args.hosts, "vms": args.vms, "moves": len(todo),
                      "in_flight": args.in_flight, "policy": args.policy,
                      "recheck": ms(cut), "whole_snapshot_check_move": ms(whole)}))


if __name__ == "__main__":
    main()
