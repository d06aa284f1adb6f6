"""Energy accounting from what the store saw: kWh used, kWh an always-on cluster would have
used, kWh saved, host-hours off, power cycles. Pure: samples and power events in, a report out.

A host's draw is what its BMC's power meter read, where it has one; elsewhere its power model's
curve at its CPU fraction (SPECpower-style points, linear in between), nothing while off. The
always-on counterfactual charges every host for every second of the period: its measured load
while it was on, idle power while it was off.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ulm.model import PowerCurve

#: Used when a host names no model: a typical 2-socket server (assumption, stated in reports).
DEFAULT_CURVE = PowerCurve("default", (120.0, 150.0, 170.0, 185.0, 200.0, 215.0, 230.0, 245.0,
                                       260.0, 275.0, 290.0))


@dataclass(frozen=True, slots=True)
class HostEnergy:
    host: str
    kwh: float
    always_on_kwh: float
    hours_off: float
    power_cycles: int
    metered_hours: float = 0.0  # time covered by BMC power readings


@dataclass(frozen=True, slots=True)
class EnergyReport:
    since: float
    until: float
    hosts: tuple[HostEnergy, ...]

    @property
    def kwh(self) -> float:
        return sum(h.kwh for h in self.hosts)

    @property
    def always_on_kwh(self) -> float:
        return sum(h.always_on_kwh for h in self.hosts)

    @property
    def saved_kwh(self) -> float:
        return self.always_on_kwh - self.kwh

    def to_dict(self) -> dict[str, object]:
        return {"since": self.since, "until": self.until, "kwh": round(self.kwh, 4),
                "always_on_kwh": round(self.always_on_kwh, 4),
                "saved_kwh": round(self.saved_kwh, 4),
                "host_hours_off": round(sum(h.hours_off for h in self.hosts), 3),
                "power_cycles": sum(h.power_cycles for h in self.hosts),
                "metered_host_hours": round(sum(h.metered_hours for h in self.hosts), 3),
                "hosts": [{"host": h.host, "kwh": round(h.kwh, 4),
                           "always_on_kwh": round(h.always_on_kwh, 4),
                           "hours_off": round(h.hours_off, 3), "power_cycles": h.power_cycles,
                           "metered_hours": round(h.metered_hours, 3)}
                          for h in self.hosts]}


def watts(curve: PowerCurve, u: float) -> float:
    """The curve at `u` (clamped to [0, 1]), linear between its evenly spaced points. Plain
    arithmetic: this runs once per sample of a report, where numpy's per-call cost dominated."""
    pts = curve.watts
    x = min(max(u, 0.0), 1.0) * (len(pts) - 1)
    i = min(int(x), len(pts) - 2)
    return float(pts[i] + (pts[i + 1] - pts[i]) * (x - i))


def account(since: float, until: float, samples: Mapping[str, Sequence[tuple[float, float]]],
            events: Sequence[tuple[float, str, str]],
            curves: Mapping[str, PowerCurve],
            readings: Mapping[str, Sequence[tuple[float, float, float]]] | None = None
            ) -> EnergyReport:
    """`samples`: host -> [(ts, cpu fraction)] oldest first; `events`: (ts, host, on|off) of
    power actions that succeeded, oldest first; `curves`: host -> its power model;
    `readings`: host -> [(ts, watts, holds_s)] from its BMC's power meter, oldest first.

    Where a BMC reading covers an instant, it is what the host drew (standby while off
    included); elsewhere the model: the curve at the sampled CPU while on, nothing while off.
    The always-on counterfactual charges idle power for the time off. A sample or reading
    that is not a finite number (a sensor's NaN) counts as missing, so no figure is ever NaN.
    """
    if not (math.isfinite(since) and math.isfinite(until)) or until < since:
        raise ValueError(f"energy window {since!r} .. {until!r} is not a forward time span")
    samples = {h: [(t, u) for t, u in pts if math.isfinite(t) and math.isfinite(u)]
               for h, pts in samples.items()}
    events = [e for e in events if math.isfinite(e[0])]
    meter = {h: [(t, w, hold) for t, w, hold in rows
                 if math.isfinite(t) and math.isfinite(w) and math.isfinite(hold)]
             for h, rows in (readings or {}).items()}
    off_spans = _off_spans(since, until, events)
    out = []
    for host in sorted(set(samples) | set(meter) | {h for _, h, _ in events}):
        curve = curves.get(host, DEFAULT_CURVE)
        used = always = metered = 0.0
        for a, b, u, w, dark in _timeline(since, until, samples.get(host, ()),
                                          meter.get(host, ()), off_spans.get(host, [])):
            dt = b - a
            if w is not None:
                metered += dt
                used += w * dt
                always += (watts(curve, 0.0) if dark else w) * dt
            elif u is not None:
                used += 0.0 if dark else watts(curve, u) * dt
                always += watts(curve, 0.0 if dark else u) * dt
        off = sum(min(b, until) - max(a, since) for a, b in off_spans.get(host, [])
                  if b > since and a < until)
        cycles = sum(1 for t, h, a in events if h == host and a == "off" and since <= t < until)
        out.append(HostEnergy(host, used / 3.6e6, always / 3.6e6, off / 3600.0, cycles,
                              metered / 3600.0))
    return EnergyReport(since, until, tuple(out))


def _timeline(since: float, until: float, pts: Sequence[tuple[float, float]],
              meter: Sequence[tuple[float, float, float]], off: Sequence[tuple[float, float]]
              ) -> list[tuple[float, float, float | None, float | None, bool]]:
    """[since, until] cut at every sample, reading and power event: (start, end, CPU fraction
    of the last sample or None before the first, watts of the reading in force or None,
    powered off). A sample holds until the next; a reading for its `holds_s`."""
    cuts = {since, until}
    cuts.update(t for t, _ in pts if since < t < until)
    for t, _, hold in meter:
        cuts.update(x for x in (t, t + hold) if since < x < until)
    for a, b in off:
        cuts.update(x for x in (a, b) if since < x < until)
    edges = sorted(cuts)
    out: list[tuple[float, float, float | None, float | None, bool]] = []
    p_times = [t for t, _ in pts]
    m_times = [t for t, _, _ in meter]
    for a, b in itertools.pairwise(edges):
        i = bisect.bisect_right(p_times, a) - 1
        u = pts[i][1] if i >= 0 else None
        j = bisect.bisect_right(m_times, a) - 1
        w = meter[j][1] if j >= 0 and a < meter[j][0] + meter[j][2] else None
        out.append((a, b, u, w, any(x <= a < y for x, y in off)))
    return out


def _off_spans(since: float, until: float,
               events: Sequence[tuple[float, str, str]]) -> dict[str, list[tuple[float, float]]]:
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    went_off: dict[str, float] = {}
    for t, host, action in events:
        if action == "off" and host not in went_off:
            went_off[host] = t
        elif action == "on" and host in went_off:
            spans[host].append((went_off.pop(host), t))
    for host, t in went_off.items():
        spans[host].append((t, until))
    return spans
