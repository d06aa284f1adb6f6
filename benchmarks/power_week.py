"""A simulated week of power saving, through the daemon's own round (collect -> store ->
snapshot -> schedule -> execute) on `SimCluster` with a simulated clock.

    .venv/bin/python benchmarks/power_week.py [--hosts 24] [--boot-s 180]

Workload: the seven GCD days (`../shared/traces/gcd/`) are consecutive windows of the same jobs,
so each job is one VM for the whole week (2 vCPUs, 4 GiB; CPU demand = its CPU % x 2 cores; on
a day it is absent from the trace it idles at 5 %). Hosts: 8 cores, 64 GiB, the default power
curve (120 W idle .. 290 W). The week starts on Monday 2026-11-30 00:00 UTC; office hours are
Mon-Fri 08:00-18:00 UTC.

Two policies: `always-on` (balance, nothing switched off) and `power-save` (the same by day; at
night consolidation with one empty host and 25 % headroom kept, empty hosts switched off after
15 minutes empty; all hosts woken 30 minutes before office hours). Booting takes `--boot-s`
(the host cannot take VMs meanwhile); each boot is charged `boot_s` at maximum power.
Prints kWh with and without power saving, the night share of host-time over 100 % CPU
(SLA violation), wake-ups, power-offs and migrations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED
from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.energy import DEFAULT_CURVE, account, watts
from ulm.executor import Executor, Limits
from ulm.policy import parse_policy
from ulm.sim.traces import INTERVAL_S, load_trace
from ulm.store import Store

WEEK_START = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()  # a Monday
CORES, HOST_MIB, VCPUS, VM_MIB = 8, 65536.0, 2, 4096.0

BASE = """
name = "{name}"
[demand]
estimator = "max"
window = 6
[overload]
threshold = 0.85
sustain = 2
window = 3
[placement]
strategy = "balance"
max_cpu_after = 0.8
[balance]
enabled = true
[gates]
cooldown_s = 3600
max_moves_per_round = 10
"""

CALENDAR = """
[calendar]
timezone = "UTC"
wake_lead_s = 1800
[calendar.office_hours]
mon = "08:00-18:00"
tue = "08:00-18:00"
wed = "08:00-18:00"
thu = "08:00-18:00"
fri = "08:00-18:00"
[night.placement]
strategy = "pabfd"
max_cpu_after = 0.75
[night.balance]
enabled = false
[night.consolidation]
enabled = true
underload_threshold = 0.4
reserve_hosts = 1
headroom = 0.25
settle_s = 900
max_cycles_per_day = 2
"""


def week_load() -> tuple[list[str], np.ndarray]:
    """VM names and a VMs x (7 x 288) matrix of CPU fractions (of the VM's 2 vCPUs)."""
    days = [load_trace(SHARED / "traces" / "gcd" / f"gcd-day{d:02d}.csv.gz")
            for d in range(1, 8)]
    names = sorted({n for t in days for n in t.vm_names})
    index = {n: i for i, n in enumerate(names)}
    load = np.full((len(names), 7 * 288), 0.05)
    for k, t in enumerate(days):
        rows = [index[n] for n in t.vm_names]
        load[rows, k * 288:(k + 1) * 288] = t.cpu
    return names, load


def run(policy_text: str, hosts: int, boot_s: float, names: list[str],
        load: np.ndarray) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="ulm-week-"))
    clock = SimClock(WEEK_START)
    host_names = [f"h{i:02d}" for i in range(hosts)]
    # Initial placement: round robin, as a cluster that grew over time would look.
    placement = {vm: host_names[i % hosts] for i, vm in enumerate(names)}
    cluster = SimCluster(clock, placement, {vm: VM_MIB for vm in names},
                         bandwidth_mib_s=100.0, boot_s=boot_s)
    source = SimSource(cluster, {h: CORES for h in host_names}, {h: HOST_MIB for h in host_names},
                       vm_vcpus={vm: VCPUS for vm in names})
    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp}/ulm.db"),
                 collect=CollectConfig(interval_s=INTERVAL_S, window=6),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"qemu+tcp://{h}/system")
                             for h in host_names))
    store = Store.open(cfg.store.url, mode="create")
    policy = parse_policy(policy_text)
    executor = Executor(cluster, clock, store, Limits(max_concurrent=4, poll_s=5.0,
                                                       power_timeout_s=boot_s * 3),
                        power={h: cluster.power(h) for h in host_names})
    daemon = Daemon(cfg, policy, store, [source], executor, clock, Mode.enforce)
    daemon.start()
    over_night = host_night = 0.0
    t0 = time.perf_counter()
    for k in range(load.shape[1]):
        clock.advance_to(WEEK_START + k * INTERVAL_S)
        source.vm_cpu = {vm: float(load[i, k]) * VCPUS for i, vm in enumerate(names)}
        daemon.run_round()
        now = clock.now()
        if policy.calendar is None or policy.effective(now)[1].value == "night":
            per_host: dict[str, float] = defaultdict(float)
            for vm, h in cluster.placement.items():
                per_host[h] += source.vm_cpu[vm]
            on = [h for h in host_names if cluster.is_on(h)]
            host_night += len(on)
            over_night += sum(1 for h in on if per_host[h] > CORES)
    end = WEEK_START + load.shape[1] * INTERVAL_S
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in store.host_samples(0.0):
        if s.cpu is not None:
            samples[s.name].append((s.ts, s.cpu))
    events = [(e["ts"], e["host"], e["action"]) for e in store.power_events()
              if e["result"] == "done"]
    report = account(WEEK_START, end, samples, events, {})
    wakes = sum(1 for _, _, a in events if a == "on")
    boot_kwh = wakes * boot_s * watts(DEFAULT_CURVE, 1.0) / 3.6e6
    migrations = sum(1 for p in store.plans(100000) for o in store.outcomes(p.id)
                     if o["kind"] == "move" and o["status"] == "done")
    return {"policy": policy.name, "kwh": round(report.kwh + boot_kwh, 2),
            "always_on_kwh": round(report.always_on_kwh, 2),
            "boot_kwh": round(boot_kwh, 2), "host_hours_off": round(
                sum(h.hours_off for h in report.hosts), 1),
            "wake_ups": wakes, "power_offs": sum(1 for _, _, a in events if a == "off"),
            "migrations": migrations,
            "night_overload_share": round(over_night / max(host_night, 1), 5),
            "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    logging.getLogger("ulm").setLevel(logging.ERROR)  # plan problems are counted, not printed
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=24)
    ap.add_argument("--boot-s", type=float, default=180.0)
    args = ap.parse_args()
    names, load = week_load()
    rows = [run(BASE.format(name="always-on"), args.hosts, args.boot_s, names, load),
            run(BASE.format(name="power-save") + CALENDAR, args.hosts, args.boot_s, names,
                load)]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
