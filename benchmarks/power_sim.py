"""A simulated week of power saving with `ulm simulate`'s engine: real power states, the
`office-hours` calendar, every boot paid for.

    .venv/bin/python benchmarks/power_sim.py [--boot-s 180] [--skip-planetlab]

Two workloads, each run twice with the built-in `office-hours` policy — as shipped (night:
consolidate and power empty hosts off) and with `power_off = false` (the same moves, every host
left on) — from Monday 2026-11-30 00:00 UTC, honest mode:

* GCD: the seven consecutive days (`../shared/traces/gcd/`) on 200 CloudSim hosts;
* PlanetLab: the six days (`../shared/traces/planetlab/`) chained as one cluster (3,079 VMs by
  name; a VM absent on a day idles) on 2,000 hosts (about 2 minutes per run).

Prints kWh with and without power saving, what an always-on cluster would use, boot energy,
host-hours off, power-offs, wake-ups, migrations and SLATAH at night and overall.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DAYS, PLANETLAB, SHARED
from ulm.policy import Policy, resolve_policy
from ulm.sim.engine import SimConfig, simulate
from ulm.sim.hosttypes import Hosts
from ulm.sim.traces import Trace, chain, load_trace

MONDAY = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()


def without_power_off(pol: Policy) -> Policy:
    night = dict(pol.night or {})
    night["consolidation"] = {**night.get("consolidation", {}), "power_off": False}
    return pol.model_copy(update={"night": night, "name": f"{pol.name} (all on)"})


def row(workload: str, trace: Trace, hosts: int, pol: Policy, boot_s: float) -> dict[str, object]:
    res = simulate(trace, pol, SimConfig(hosts=Hosts.cloudsim(hosts), start=MONDAY,
                                         boot_s=boot_s))
    x = res.extra
    return {"workload": workload, "policy": res.policy, "vms": res.vms, "hosts": hosts,
            "kwh": round(res.energy_kwh, 1), "always_on_kwh": round(x["always_on_kwh"], 1),
            "boot_kwh": round(x["boot_kwh"], 2), "host_hours_off": round(x["host_hours_off"]),
            "power_offs": x["power_offs"], "wake_ups": x["wake_ups"],
            "migrations": res.migrations, "night_slatah_pct": round(x["night_slatah"] * 100, 4),
            "slatah_pct": round(res.slatah * 100, 4), "wall_s": round(res.wall_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boot-s", type=float, default=180.0)
    ap.add_argument("--skip-planetlab", action="store_true")
    args = ap.parse_args()
    pol = resolve_policy("office-hours")
    workloads = [("GCD 7 days", chain([load_trace(SHARED / "traces" / "gcd" /
                                                  f"gcd-day{d:02d}.csv.gz")
                                       for d in range(1, 8)]), 200)]
    if not args.skip_planetlab:
        workloads.append(("PlanetLab 6 days", chain([
            load_trace(PLANETLAB / f"planetlab-{d}.csv.gz") for d in DAYS]), 2000))
    rows = []
    for name, trace, hosts in workloads:
        for p in (pol, without_power_off(pol)):
            rows.append(row(name, trace, hosts, p, args.boot_s))
            print(json.dumps(rows[-1]), flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
