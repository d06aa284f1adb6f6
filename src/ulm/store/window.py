"""The snapshot's read of the samples: each host's and VM's last `window` figures, as arrays.

A snapshot may look back `since` (window x stale_s x 2: three hours by default), but a name's
last `window` figures are almost always in the last `window` intervals. So one query reads that
span (`window x stale_s / 3`: `window` intervals with the default stale_s of three intervals);
only names with fewer figures in it (new, silent or slower-reporting ones) are read further back,
by name, through the (kind, name, ts) index. The result is exactly what reading all of
[since, now] would give, at a sixth of the rows, grouped with numpy rather than one Python
object per sample.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.engine import Connection

from ulm.store import schema as t

_CHUNK = 5000  # names per IN (...): below SQLite's and PostgreSQL's bound-parameter limits
_s = t.samples.c
_COLUMNS = (_s.ts, _s.kind, _s.name, _s.host, _s.cpu, _s.mem_mib)


@dataclass(frozen=True, slots=True)
class Recent:
    """What the samples of [since, now] say, per name."""

    vm_cpu: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)
    """vm -> (times, cpu) of its last `window` figures, oldest first"""
    vm_mem: dict[str, float] = field(default_factory=dict)  # vm -> newest memory figure
    host_cpu: dict[str, tuple[float, ...]] = field(default_factory=dict)  # last `window`
    host_measured: dict[str, float] = field(default_factory=dict)  # newest own cpu figure
    last_vm_on: dict[str, float] = field(default_factory=dict)  # host -> newest VM sample


class _Rows:
    """Sample rows as column arrays, oldest first."""

    def __init__(self, rows: Sequence[Any]) -> None:
        cols = list(zip(*rows, strict=True)) if rows else [()] * 6
        self.ts = np.asarray(cols[0], dtype=np.float64)
        self.kind = np.asarray(cols[1], dtype=object)
        self.name = np.asarray(cols[2], dtype=object)
        self.host = np.asarray(cols[3], dtype=object)
        self.cpu = np.asarray(cols[4], dtype=np.float64)  # None -> nan
        self.mem = np.asarray(cols[5], dtype=np.float64)


def read_recent(c: Connection, now: float, window: int, stale_s: float, since: float,
                vms: Iterable[str], hosts: Iterable[str], empty: Collection[str]) -> Recent:
    """The samples in [since, now] of `vms` and `hosts`, and the newest VM sample on each
    `empty` host (one no VM is listed on now: how long it has been empty)."""
    window = max(window, 1)
    lo = max(since, now - window * max(stale_s, 1.0) / 3)
    rows = list(c.execute(select(*_COLUMNS).where(_s.ts >= lo, _s.ts <= now)
                          .order_by(_s.ts)))
    recent = _aggregate(_Rows(rows), window)
    if lo > since:
        short_vms = [v for v in vms
                     if len(recent.vm_cpu.get(v, ((), ()))[0]) < window
                     or v not in recent.vm_mem]
        short_hosts = [h for h in hosts if len(recent.host_cpu.get(h, ())) < window]
        older: list[Any] = []
        for kind, names in (("vm", short_vms), ("host", short_hosts)):
            for chunk in _chunks(names):
                older += c.execute(select(*_COLUMNS).where(
                    _s.kind == kind, _s.name.in_(bindparam("n", expanding=True)),
                    _s.ts >= since, _s.ts < lo), {"n": chunk})
        if older:  # older rows first: the arrays stay in time order
            older.sort(key=lambda r: r[0])
            recent = _aggregate(_Rows(older + rows), window)
        missing = [h for h in empty if h not in recent.last_vm_on]
        for chunk in _chunks(missing):
            recent.last_vm_on.update((str(h), float(ts)) for h, ts in c.execute(
                select(_s.host, func.max(_s.ts)).where(
                    _s.kind == "vm", _s.host.in_(bindparam("n", expanding=True)),
                    _s.ts >= since, _s.ts < lo).group_by(_s.host), {"n": chunk}))
    # a host's newest own figure, however old: one older than the window is stale too
    unmeasured = [h for h in hosts if h not in recent.host_measured]
    for chunk in _chunks(unmeasured):
        recent.host_measured.update((str(h), float(ts)) for h, ts in c.execute(
            select(_s.name, func.max(_s.ts)).where(and_(
                _s.kind == "host", _s.name.in_(bindparam("n", expanding=True)),
                _s.cpu.is_not(None), _s.ts <= now)).group_by(_s.name), {"n": chunk}))
    return recent


def _chunks(names: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(names), _CHUNK):
        yield list(names[i:i + _CHUNK])


def _aggregate(r: _Rows, window: int) -> Recent:
    is_vm = r.kind == "vm"
    has_cpu = ~np.isnan(r.cpu)
    vm_cpu = {name: (tuple(r.ts[ix].tolist()), tuple(r.cpu[ix].tolist()))
              for name, ix in _last_n(r.name, is_vm & has_cpu, window)}
    host_rows = ~is_vm & has_cpu
    host_cpu = {name: tuple(r.cpu[ix].tolist()) for name, ix in _last_n(r.name, host_rows,
                                                                        window)}
    newest_host = _newest(r.name, host_rows)
    newest_mem = _newest(r.name, is_vm & ~np.isnan(r.mem))
    newest_on = _newest(r.host, is_vm)
    return Recent(vm_cpu, {str(n): float(r.mem[i]) for n, i in newest_mem},
                  host_cpu, {str(n): float(r.ts[i]) for n, i in newest_host},
                  {str(n): float(r.ts[i]) for n, i in newest_on})


def _codes(keys: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each key as a small integer (in order of first appearance) and the keys by code."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(k, len(index)) for k in keys.tolist()),
                        dtype=np.int64, count=len(keys))
    return codes, list(index)


def _last_n(keys: np.ndarray, mask: np.ndarray, n: int) -> Iterator[tuple[str, np.ndarray]]:
    """key -> row indices of its last `n` rows under `mask`, oldest first."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return
    codes, names = _codes(keys[rows])
    order = np.argsort(codes, kind="stable")  # by key, each key's rows still in time order
    counts = np.bincount(codes, minlength=len(names))
    ends = np.cumsum(counts)
    for code, end in enumerate(ends.tolist()):
        start = max(end - int(counts[code]), end - n)
        yield names[code], rows[order[start:end]]


def _newest(keys: np.ndarray, mask: np.ndarray) -> Iterator[tuple[str, int]]:
    """key -> index of its newest row under `mask` (rows in time order: the last one)."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return
    codes, names = _codes(keys[rows])
    last = np.full(len(names), -1, dtype=np.int64)
    np.maximum.at(last, codes, rows)  # rows are in time order: the largest index is newest
    yield from zip(names, last.tolist(), strict=True)
