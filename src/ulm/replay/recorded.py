"""What really happened over the simulated span, measured like the simulator measures a run.

The simulator accounts from its first round to its last: [since + 5 min, since + (K-1) x 5 min]
for K buckets. Over the same span:

* migrations and power-offs over the whole window (the simulation starts from the placement
  of the first samples, so every move after them is one the policy had the chance to make):
  the store's outcomes — moves that finished `done` (failed ones counted apart) — and power
  events `off` that were `done`; host-hours off from the power events, over the span;
* energy: `ulm.energy.account` — BMC readings where a host has them, elsewhere its power curve
  at its sampled CPU (the basis is reported: metered, model or both);
* overload time: host-buckets in which the VMs recorded on a host used all of its CPU (a host
  cannot be measured above its capacity: one whose VMs used all of it was asked for at least
  that), over the host-buckets in which the host reported (SLATAH's ratio).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from ulm.energy import account
from ulm.replay.load import Recording
from ulm.sim.traces import INTERVAL_S
from ulm.store import Store
from ulm.store import schema as t

SATURATED = 0.999  # a host whose VMs used this share of its CPU ran out of it


class EnergyBasis(enum.StrEnum):
    metered = "metered"  # BMC readings all along
    model = "model"  # power curves at the sampled CPU
    mixed = "mixed"
    none = "none"  # no host figures: no energy


@dataclass(frozen=True, slots=True)
class Recorded:
    span: tuple[float, float]
    migrations: int
    failed_migrations: int
    energy_kwh: float | None
    energy_basis: EnergyBasis
    overload_host_h: float
    active_host_h: float
    power_offs: int
    host_hours_off: float

    @property
    def slatah(self) -> float:
        return self.overload_host_h / self.active_host_h if self.active_host_h else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"migrations": self.migrations, "failed_migrations": self.failed_migrations,
                "energy_kwh": self.energy_kwh, "energy_basis": self.energy_basis.value,
                "overload_host_h": self.overload_host_h, "active_host_h": self.active_host_h,
                "slatah": self.slatah, "power_offs": self.power_offs,
                "host_hours_off": self.host_hours_off}


def span(rec: Recording) -> tuple[float, float]:
    return rec.since + INTERVAL_S, rec.since + (rec.buckets - 1) * INTERVAL_S


def measure(store: Store, rec: Recording) -> Recorded:
    a, b = span(rec)
    o, p = t.outcomes, t.power_events
    with store.engine.connect() as c:
        moves = c.execute(select(o.c.status).where(
            o.c.kind == "move", o.c.finished_at >= rec.since,
            o.c.finished_at < rec.until)).all()
        events = [(float(r.ts), r.host, r.action) for r in c.execute(
            select(p.c.ts, p.c.host, p.c.action).where(p.c.result == "done", p.c.ts < rec.until)
            .order_by(p.c.ts))]
        host_rows = c.execute(select(t.samples.c.ts, t.samples.c.name, t.samples.c.cpu).where(
            t.samples.c.kind == "host", t.samples.c.cpu.is_not(None), t.samples.c.ts <= b,
            t.samples.c.ts >= rec.since - 3600.0)
            .order_by(t.samples.c.ts)).all()
        readings = c.execute(select(t.power_readings).where(t.power_readings.c.ts <= b)
                             .order_by(t.power_readings.c.ts)).all()
    hosts = set(rec.host_names)
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in host_rows:
        if r.name in hosts:
            samples[r.name].append((float(r.ts), float(r.cpu)))
    meter: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in readings:
        if r.host in hosts:  # a raw reading holds for one bucket at most
            meter[r.host].append((float(r.ts), float(r.watts), r.resolution_s or INTERVAL_S))
    curves = dict(zip(rec.host_names, rec.host_curve, strict=True))
    report = account(a, b, samples, [e for e in events if e[1] in hosts and e[0] <= b],
                     curves, meter)
    metered = sum(h.metered_hours for h in report.hosts)
    covered = (b - a) / 3600.0 * len(rec.host_names)
    basis = (EnergyBasis.none if not samples and not meter else EnergyBasis.metered
             if metered >= covered * 0.999 else EnergyBasis.mixed if metered > 0
             else EnergyBasis.model)
    over, active = _overload(rec)
    return Recorded(
        (a, b), sum(1 for m in moves if m.status == "done"),
        sum(1 for m in moves if m.status == "failed"),
        None if basis is EnergyBasis.none else report.kwh, basis, over, active,
        sum(1 for ts, _, action in events if action == "off" and rec.since <= ts),
        sum(h.hours_off for h in report.hosts))


def _overload(rec: Recording) -> tuple[float, float]:
    """Overloaded and active host-hours over buckets 1 .. K-2 (the simulated span)."""
    k = rec.buckets
    inner = slice(1, k - 1)
    used = np.zeros((len(rec.host_names), k))
    cores = rec.trace.cpu * rec.vm_vcpus[:, None]  # the measured cells only (not the filled)
    v, b = np.nonzero(rec.measured)
    np.add.at(used, (rec.vm_home[v, b], b), cores[v, b])
    full = used >= rec.host_cpu[:, None] * SATURATED
    up = rec.host_up if rec.host_up.any() else used > 0  # no host figures: hosts with VMs
    h = INTERVAL_S / 3600.0
    return (float((full & up)[:, inner].sum()) * h, float(up[:, inner].sum()) * h)
