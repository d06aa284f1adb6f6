"""The Hosts page's figures beyond the snapshot: a host's CPU or memory series from the store,
how it is powered (from the config, credentials blanked) and its next maintenance window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

import numpy as np

from ulm.api import models as m
from ulm.api.actions import NotFound
from ulm.redact import redact_url
from ulm.store.records import Booking
from ulm.store.rows import SampleRow

#: at most this many points a chart series: 30 days of 10 s samples would be 259,200
MAX_POINTS = 1000
#: the Hosts page's chart ranges (`/hosts?range=`, another is a 422), each a `since` the
#: API reads as `-RANGE`
ChartRange = Literal["1h", "6h", "24h", "7d", "30d"]
RANGES: tuple[str, ...] = get_args(ChartRange)


def host_rows(store: Any, name: str, since: float) -> list[SampleRow]:
    """The host's own samples since `since`, oldest first: what both charts read."""
    if name not in store.host_names():
        raise NotFound(f"no host {name!r}")
    return list(store.host_samples(since, name))


def bucketed(ts: np.ndarray, values: np.ndarray, since: float, until: float,
             points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most `points` points: [since, until] cut into `points` equal buckets, each
    non-empty one the mean of its samples' times and of their values (numpy, in the API
    process: one host's rows of one range, already cut by the store's index). A sample
    after `until` (a clock a little ahead) counts in the last bucket. Fewer samples than
    buckets come back as they are, one a bucket."""
    if ts.size == 0:
        return [], []
    width = max(until - since, 1e-9) / points
    k = np.clip(((ts - since) // width).astype(np.int64), 0, points - 1)
    n = np.bincount(k, minlength=points)
    full = n > 0
    t = np.bincount(k, ts, minlength=points)[full] / n[full]
    v = np.bincount(k, values, minlength=points)[full] / n[full]
    return [float(x) for x in t], [float(x) for x in v]


def _figure(rows: list[SampleRow], figure: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(s.ts, getattr(s, figure)) for s in rows if getattr(s, figure) is not None]
    return (np.array([p[0] for p in pairs], dtype=np.float64),
            np.array([p[1] for p in pairs], dtype=np.float64))


def cpu_series(name: str, rows: list[SampleRow], since: float, until: float) -> m.CpuSeries:
    ts, cpu = bucketed(*_figure(rows, "cpu"), since, until)
    return m.CpuSeries(name=name, since=since, until=until, ts=ts, cpu=cpu)


def mem_series(name: str, rows: list[SampleRow], total_mib: float, since: float,
               until: float) -> m.MemSeries:
    ts, used = bucketed(*_figure(rows, "mem_mib"), since, until)
    return m.MemSeries(name=name, since=since, until=until, ts=ts, mem_mib=used,
                       mem=[u / total_mib if total_mib else 0.0 for u in used],
                       mem_total_mib=total_mib)


def power_of(cfg: Any) -> dict[str, tuple[str, str]]:
    """Host -> (power driver, its address fit to show); a host without `[hosts.power]`: none."""
    return {h.name: (h.power.driver, redact_url(h.power.address))
            for h in cfg.hosts if h.power is not None}


def next_windows(bookings: Iterable[Booking], now: float) -> dict[str, m.MaintenanceWindow]:
    """Host -> its earliest active booking that has not ended (one under way counts)."""
    out: dict[str, m.MaintenanceWindow] = {}
    for b in sorted(bookings, key=lambda b: b.start):
        if b.end > now and b.host not in out:
            out[b.host] = m.MaintenanceWindow(id=b.id, start=b.start, end=b.end,
                                              status=b.status, power_off=b.power_off)
    return out
