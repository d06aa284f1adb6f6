"""The side-by-side comparison as data: one `Figures` for what happened, one per policy."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ulm.replay.load import Recording
from ulm.replay.recorded import Recorded
from ulm.sim.engine import SimResult


class Metric(enum.StrEnum):
    migrations = "migrations"
    overload_host_h = "overload_host_h"
    slatah = "slatah"
    energy_kwh = "energy_kwh"
    power_offs = "power_offs"
    host_hours_off = "host_hours_off"


@dataclass(frozen=True, slots=True)
class Figures:
    name: str
    values: dict[Metric, float | None]  # None: not known (no energy figures recorded)

    def diff(self, base: Figures) -> dict[Metric, float | None]:
        out: dict[Metric, float | None] = {}
        for m, v in self.values.items():
            b = base.values.get(m)
            out[m] = None if v is None or b is None else v - b
        return out


def recorded_figures(r: Recorded) -> Figures:
    return Figures("recorded", {
        Metric.migrations: float(r.migrations), Metric.overload_host_h: r.overload_host_h,
        Metric.slatah: r.slatah, Metric.energy_kwh: r.energy_kwh,
        Metric.power_offs: float(r.power_offs), Metric.host_hours_off: r.host_hours_off})


def simulated_figures(s: SimResult) -> Figures:
    x = s.extra
    return Figures(s.policy, {
        Metric.migrations: float(s.migrations), Metric.overload_host_h: x["overload_host_h"],
        Metric.slatah: s.slatah, Metric.energy_kwh: s.energy_kwh,
        Metric.power_offs: float(x.get("power_offs", s.host_shutdowns)),
        Metric.host_hours_off: float(x.get("host_hours_off", 0.0))})


def as_dict(rec: Recording, recorded: Recorded, runs: list[SimResult],
            boot_s: float) -> dict[str, object]:
    base = recorded_figures(recorded)
    policies = []
    for s in runs:
        f = simulated_figures(s)
        policies.append({"policy": s.policy, **{m.value: v for m, v in f.values.items()},
                         "pdm": s.pdm, "wall_s": s.wall_s,
                         "diff": {m.value: d for m, d in f.diff(base).items()}})
    return {"since": rec.since, "until": rec.until, "span": list(recorded.span),
            "buckets": rec.buckets, "hosts": len(rec.host_names), "vms": rec.trace.n_vms,
            "boot_s": boot_s, "gaps": rec.gaps.to_dict(), "recorded": recorded.to_dict(),
            "policies": policies}
