"""Shared by the benchmarks: the traces, CloudSim's reference tables, parallel runs."""

from __future__ import annotations

import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PLANETLAB = SHARED / "traces" / "planetlab"
GCD = SHARED / "traces" / "gcd"  # days named gcd-day01 ... gcd-day07
REFERENCE = SHARED / "reference" / "cloudsim.md"
DAYS = ("20110303", "20110306", "20110309", "20110322", "20110325", "20110403")
CLOUDSIM = ("npa", "dvfs", "thr-mmt-1.0", "thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5",
            "lr-mmt-1.2", "lr-mc-1.2", "lr-rs-1.2", "lr-mu-1.2")
SECTIONS = {"energy": "energy (kWh) per day", "migrations": "VM migrations per day",
            "slatah": "SLATAH (%) per day", "pdm": "PDM (%, printed with 2 decimals) per day",
            "slav": "SLAV (×1e-5) per day", "esv": "ESV (×1e-3, = energy × SLAV) per day"}


def reference() -> dict[str, dict[str, dict[str, float]]]:
    """metric -> policy -> day -> CloudSim's value, from section 3 of the reference."""
    text = REFERENCE.read_text()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric, title in SECTIONS.items():
        block = text[text.index(f"### {title}"):]
        block = block[:block.index("\n\n", block.index("|"))]
        table: dict[str, dict[str, float]] = {}
        for line in block.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 7 or not re.match(r"^[a-z]", cells[0]) or cells[0] == "policy":
                continue
            table[cells[0].replace("_", "-")] = {d: float(v) for d, v in
                                                 zip(DAYS, cells[1:7], strict=True)}
        out[metric] = table
    return out


def run_one(args: tuple[str, str, str]) -> dict[str, Any]:
    from ulm.policy import resolve_policy
    from ulm.sim.engine import SimConfig, simulate
    from ulm.sim.traces import load_trace

    day, policy, mode = args
    trace = load_trace(GCD / f"{day}.csv.gz" if day.startswith("gcd-")
                       else PLANETLAB / f"planetlab-{day}.csv.gz")
    res = simulate(trace, resolve_policy(policy), SimConfig(mode=mode)).to_dict()
    res["day"], res["policy"] = day, policy
    return res


def run_all(jobs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    workers = int(os.environ.get("ULM_BENCH_WORKERS", "2"))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        out = []
        for res in pool.map(run_one, jobs):
            print(f"  {res['day']} {res['policy']:12} {res['mode']:6} "
                  f"{res['energy_kwh']:9.2f} kWh {res['migrations']:6d} migr "
                  f"{res['wall_s']:5.1f} s", file=sys.stderr, flush=True)
            out.append(res)
    return out


def dev(ours: float, ref: float) -> str:
    if ref == 0:
        return "exact" if abs(ours) < 5e-3 else f"{ours:+.2f} abs"
    return f"{(ours - ref) / ref * 100:+.1f}%"
