"""Every CloudSim policy in compat mode on the six PlanetLab days, beside CloudSim 3.0.3.

    .venv/bin/python benchmarks/cloudsim_compat.py [--days 20110303,...] [--policies a,b]

Prints one markdown table per metric: ours, CloudSim's, and the deviation, per day.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CLOUDSIM, DAYS, dev, reference, run_all

SCALE = {"energy": ("energy_kwh", 1.0, "{:.2f}"), "migrations": ("migrations", 1.0, "{:.0f}"),
         "slatah": ("slatah", 100.0, "{:.2f}"), "pdm": ("pdm", 100.0, "{:.3f}"),
         "slav": ("slav", 1e5, "{:.2f}"), "esv": ("esv", 1e3, "{:.2f}")}
REQUIRED = ("thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", default=",".join(DAYS))
    ap.add_argument("--policies", default=",".join(CLOUDSIM))
    ap.add_argument("--json", type=Path, help="also write every result to this file")
    args = ap.parse_args()
    days, policies = args.days.split(","), args.policies.split(",")
    results = run_all([(d, p, "compat") for p in policies for d in days])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    ref = reference()
    got = {(r["policy"], r["day"]): r for r in results}
    worst: dict[str, float] = {}
    for metric, (key, scale, fmt) in SCALE.items():
        print(f"\n### {metric} (ours / CloudSim / deviation)\n")
        print("| policy | " + " | ".join(days) + " |")
        print("|---|" + "---|" * len(days))
        for p in policies:
            cells = []
            for d in days:
                ours = got[(p, d)][key] * scale
                theirs = ref[metric].get(p, {}).get(d)
                if theirs is None:
                    cells.append(fmt.format(ours))
                    continue
                cells.append(f"{fmt.format(ours)} / {fmt.format(theirs)} / {dev(ours, theirs)}")
                if metric in ("energy", "migrations", "slatah") and theirs:
                    w = abs(ours - theirs) / theirs * 100
                    worst[f"{p} {metric}"] = max(worst.get(f"{p} {metric}", 0.0), w)
            print(f"| {p} | " + " | ".join(cells) + " |")
    print("\n### worst deviation over the days (energy, migrations, SLATAH)\n")
    print("| policy | metric | worst % | required |")
    print("|---|---|---|---|")
    for name, w in sorted(worst.items()):
        p = name.split()[0]
        need = "±10 %" if p in REQUIRED else ("exact" if p in ("npa", "dvfs") else "-")
        print(f"| {p} | {name.split()[1]} | {w:.2f} | {need} |")
    print("\nwall time per simulated day (s): " + ", ".join(
        f"{p} {max(got[(p, d)]['wall_s'] for d in days):.1f}" for p in policies))


if __name__ == "__main__":
    main()
