"""The Hosts page's figures beyond the snapshot: a host's CPU or memory series from the store,
how it is powered (from the config, credentials blanked) and its next maintenance window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ulm.api import models as m
from ulm.api.actions import NotFound
from ulm.redact import redact_url
from ulm.store.records import Booking
from ulm.store.rows import SampleRow


def host_rows(store: Any, name: str, since: float) -> list[SampleRow]:
    """The host's own samples since `since`, oldest first: what both charts read."""
    if name not in store.host_names():
        raise NotFound(f"no host {name!r}")
    return [s for s in store.host_samples(since) if s.name == name]


def cpu_series(name: str, rows: list[SampleRow]) -> m.CpuSeries:
    cpu = [(s.ts, s.cpu) for s in rows if s.cpu is not None]
    return m.CpuSeries(name=name, ts=[t for t, _ in cpu], cpu=[float(c) for _, c in cpu])


def mem_series(name: str, rows: list[SampleRow], total_mib: float) -> m.MemSeries:
    mem = [(s.ts, s.mem_mib) for s in rows if s.mem_mib is not None]
    used = [float(u) for _, u in mem]
    return m.MemSeries(name=name, ts=[t for t, _ in mem], mem_mib=used,
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
