"""Drives each lab host's /proc/stat, so libvirt and munin on that host see its own CPU load.

Per host, the file `h<I>/load` says what to report: `auto` (default) follows the real CPU time
of the host's cgroup (its QEMU guests), so a busy guest that migrates takes its load with it;
a number forces that percentage (tests, `ulm lab load`). The files are rewritten *in place*:
they are bind-mounted inside the host's namespace, and a rename would break the bind.

It also plays each host's power supply: `h<I>/power_w` is what the host draws (watts), read by
its BMC's power meter (`ulm.lab.bmc`): the lab's power curve at its CPU share while on, a few
watts of standby while off.

Run as `python -m ulm.lab.fakeload STATE_DIR HOSTS` (started by `ulm lab up`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ulm.lab.hosts import cgroups, is_on
from ulm.lab.paths import LabPaths
from ulm.lab.system import cpu_usage_ns

HZ = os.sysconf("SC_CLK_TCK")
TICK_S = 0.5
IDLE_W, MAX_W, STANDBY_W = 60.0, 160.0, 6.0  # a small lab server (linear in between)


class HostStat:
    def __init__(self, root: Path, i: int) -> None:
        self.h = root / f"h{i}"
        self.cg = cgroups(i)
        self.lines = (self.h / "proc-stat").read_text().splitlines()
        self.ncpu = sum(1 for line in self.lines if line.startswith("cpu") and line[3].isdigit())
        self.used = cpu_usage_ns(self.cg) or 0

    def mode(self) -> str:
        try:
            return (self.h / "load").read_text().strip() or "auto"
        except OSError:
            return "auto"

    def busy_cpus(self, dt: float) -> float:
        mode = self.mode()
        used = cpu_usage_ns(self.cg)
        delta = 0 if used is None else max(used - self.used, 0)
        self.used = used or self.used
        if mode == "auto":
            return delta / 1e9 / dt
        return float(mode) / 100.0 * self.ncpu

    def advance(self, dt: float, on: bool = True) -> None:
        share = min(max(self.busy_cpus(dt) / self.ncpu, 0.0), 1.0)
        watts = IDLE_W + (MAX_W - IDLE_W) * share if on else STANDBY_W
        (self.h / "power_w").write_text(f"{watts:.0f}\n")
        out = []
        for line in self.lines:
            if line.startswith("cpu"):
                f = line.split()
                n = self.ncpu if f[0] == "cpu" else 1
                v = [int(x) for x in f[1:]]
                v[0] += round(share * dt * HZ * n)  # user
                v[3] += round((1 - share) * dt * HZ * n)  # idle
                line = f[0] + ("  " if f[0] == "cpu" else " ") + " ".join(map(str, v))
            out.append(line)
        self.lines = out
        with (self.h / "proc-stat").open("r+") as fh:
            fh.write("\n".join(out) + "\n")
            fh.truncate()


def main(root: Path, hosts: int) -> None:
    paths = LabPaths(root, LabPaths.default().cache)
    stats = [HostStat(root, i) for i in range(1, hosts + 1)]
    last = time.monotonic()
    while (root / "lab.json").exists():
        time.sleep(TICK_S)
        now = time.monotonic()
        for i, s in enumerate(stats, start=1):
            try:
                s.advance(now - last, is_on(paths, i))
            except (OSError, ValueError):
                continue  # a host being torn down; the next tick tries again
        last = now


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
