"""The snapshot's read of the samples: each host's and VM's last `window` figures, as arrays.

A snapshot may look back `since` (window x stale_s x 2: three hours by default), but a name's
last `window` figures are almost always in the last `window` intervals. So one query reads that
span (`window x stale_s / 3`: `window` intervals with the default stale_s of three intervals),
sorted by name; only names with fewer figures in it (new, silent or slower-reporting ones) are
read further back, by name, through the (kind, name, ts) index, and a VM with no memory figure
in the span through the partial index of rows that have one. The result is exactly what reading
all of [since, now] would give, at a sixth of the rows, grouped with numpy on the driver's
tuples (no object per sample).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.engine import Connection

from ulm.store import schema as t
from ulm.store.span import Span

_CHUNK = 5000  # names per IN (...): below SQLite's and PostgreSQL's bound-parameter limits
_s = t.samples.c
_COLUMNS = (_s.kind, _s.name, _s.ts, _s.cpu, _s.mem_mib)
_ORDER = (_s.kind, _s.name, _s.ts, _s.id)  # ties in time keep the order they were written in
_EMPTY: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())


@dataclass(frozen=True, slots=True)
class Recent:
    """What the samples of [since, now] say, per name."""

    vm_cpu: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)
    """vm -> (times, cpu) of its last `window` figures, oldest first"""
    vm_mem: dict[str, float] = field(default_factory=dict)  # vm -> newest memory figure
    host_cpu: dict[str, tuple[float, ...]] = field(default_factory=dict)  # last `window`
    host_measured: dict[str, float] = field(default_factory=dict)  # newest own cpu figure
    last_vm_on: dict[str, float] = field(default_factory=dict)  # host -> newest VM sample


def read_recent(c: Connection, now: float, window: int, stale_s: float, since: float,
                vms: Iterable[str], hosts: Iterable[str], empty: Collection[str],
                span: Span | None = None) -> Recent:
    """The samples in [since, now] of `vms` and `hosts`, and the newest VM sample on each
    `empty` host (one no VM is listed on now: how long it has been empty). `span`: the
    window's rows kept from the last read (ulm.store.span), which then reads only the new."""
    window = max(window, 1)
    hosts = list(hosts)
    lo = max(since, now - window * max(stale_s, 1.0) / 3)
    if c.dialect.name == "postgresql":  # sort the window (~330,000 rows) in memory, not on disk
        c.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    if span is not None:
        recent = _groups(*span.rows(c, lo, now, lambda stmt: _fetch(c, stmt)), window)
    else:
        recent = _aggregate(_fetch(c, select(*_COLUMNS).where(_s.ts >= lo, _s.ts <= now)
                                   .order_by(*_ORDER)), window)
    if lo > since:
        short_vms = [v for v in vms if len(recent.vm_cpu.get(v, _EMPTY)[1]) < window]
        no_mem = [v for v in vms if v not in recent.vm_mem and
                  len(recent.vm_cpu.get(v, _EMPTY)[1]) >= window]
        short_hosts = [h for h in hosts if len(recent.host_cpu.get(h, ())) < window]
        older = [_by_name(c, kind, names, (_s.ts >= since, _s.ts < lo))
                 for kind, names in (("vm", short_vms), ("host", short_hosts))]
        # only rows with a memory figure (a partial index): cheap where none has one
        older.append(_by_name(c, "vm", no_mem, (_s.ts >= since, _s.ts < lo,
                                                _s.mem_mib.is_not(None))))
        for rows in older:
            if rows:
                recent = _merge(_aggregate(rows, window), recent, window)
    for chunk in _chunks(sorted(set(empty))):
        recent.last_vm_on.update((str(h), float(ts)) for h, ts in c.execute(
            select(_s.host, func.max(_s.ts)).where(
                _s.kind == "vm", _s.host.in_(bindparam("n", expanding=True)),
                _s.ts >= since, _s.ts <= now).group_by(_s.host), {"n": chunk}))
    # a host's newest own figure, however old: one older than the window is stale too
    unmeasured = [h for h in hosts if h not in recent.host_measured]
    for chunk in _chunks(unmeasured):
        recent.host_measured.update((str(h), float(ts)) for h, ts in c.execute(
            select(_s.name, func.max(_s.ts)).where(
                _s.kind == "host", _s.name.in_(bindparam("n", expanding=True)),
                _s.cpu.is_not(None), _s.ts <= now).group_by(_s.name), {"n": chunk}))
    return recent


def _fetch(c: Connection, stmt: Select[Any], params: dict[str, Any] | None = None
           ) -> list[tuple[Any, ...]]:
    """The driver's own tuples: a window of 10,000 VMs is ~330,000 rows, and a result row
    object for each costs more than the query."""
    compiled = stmt.compile(dialect=c.dialect, compile_kwargs={"render_postcompile": True})
    cur = c.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        bound = {**compiled.params, **(params or {})}
        if c.dialect.name == "sqlite":
            cur.execute(str(compiled), tuple(bound[k] for k in compiled.positiontup or ()))
        else:
            cur.execute(str(compiled), bound)
        return list(cur.fetchall())
    except c.dialect.loaded_dbapi.Error:
        # again through SQLAlchemy, whose error handling turns a damaged or vanished store
        # into the store's one-line error (a raw driver error would bypass it)
        return [tuple(r) for r in c.execute(stmt, params or {})]
    finally:
        cur.close()


def _by_name(c: Connection, kind: str, names: Sequence[str], where: tuple[Any, ...]
             ) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(names):
        rows += c.execute(select(*_COLUMNS).where(
            _s.kind == kind, _s.name.in_(chunk), *where).order_by(*_ORDER)).all()
    return rows


def _chunks(names: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(names), _CHUNK):
        yield list(names[i:i + _CHUNK])


def _aggregate(rows: Sequence[Any], window: int) -> Recent:
    """`rows` (kind, name, ts, cpu, mem) sorted by kind, name, time."""
    if not rows:
        return Recent()
    kind, name, ts_, cpu_, mem_ = zip(*rows, strict=True)
    names = np.asarray(name, dtype=object)
    kinds = np.asarray(kind, dtype=object)
    # groups: runs of one (kind, name); names may repeat across kinds
    new = (names[1:] != names[:-1]) | (kinds[1:] != kinds[:-1])
    starts = np.concatenate(([0], np.flatnonzero(new) + 1))
    return _groups(list(zip(kinds[starts].tolist(), names[starts].tolist(), strict=True)),
                   starts, np.asarray(ts_, dtype=np.float64),
                   np.asarray(cpu_, dtype=np.float64), np.asarray(mem_, dtype=np.float64),
                   window)


def _groups(keys: Sequence[tuple[str, str]], starts: np.ndarray, ts: np.ndarray,
            cpu: np.ndarray, mem: np.ndarray, window: int) -> Recent:
    """Rows grouped by (kind, name) (`keys`, each group from its `starts` on), oldest first in
    each group; cpu and mem nan where the row has no figure."""
    out = Recent()
    if not len(starts):
        return out
    ends = np.concatenate((starts[1:], [len(ts)]))
    has_cpu = ~np.isnan(cpu)
    has_mem = ~np.isnan(mem)
    # per group: all its rows carry a cpu figure (the usual case: plain slices, no search)
    # (counted as integers: reduceat over booleans is a logical OR, never a count)
    full = np.add.reduceat(has_cpu.astype(np.int64), starts) == ends - starts
    # each group's newest row with a memory figure, found for all groups at once (a numpy
    # search per VM cost more than the rest of the loop): the latest such row at or before
    # the group's last, if it lies inside the group
    last_mem = np.maximum.accumulate(np.where(has_mem, np.arange(len(mem)), -1))[ends - 1]
    mem_at = np.where(last_mem >= starts, last_mem, -1).tolist()
    ts_l, cpu_l, mem_l = ts.tolist(), cpu.tolist(), mem.tolist()
    for (kind, n), a, b, whole, m in zip(keys, starts.tolist(), ends.tolist(), full.tolist(),
                                         mem_at, strict=True):
        n = str(n)
        if whole:  # slices of the lists: no per-figure Python step
            lo = max(a, b - window)
            times, figures = tuple(ts_l[lo:b]), tuple(cpu_l[lo:b])
        else:
            last = (np.flatnonzero(has_cpu[a:b]) + a)[-window:].tolist()
            times = tuple(ts_l[i] for i in last)
            figures = tuple(cpu_l[i] for i in last)
        if kind == "vm":
            out.vm_cpu[n] = (times, figures)
            if m >= 0:
                out.vm_mem[n] = mem_l[m]
        else:
            out.host_cpu[n] = figures
            if times:
                out.host_measured[n] = times[-1]
    return out


def _merge(older: Recent, newer: Recent, window: int) -> Recent:
    """Figures from before the span, then the span's: the newest `window` of both."""
    vm_cpu = dict(newer.vm_cpu)
    for n, (ts, cpu) in older.vm_cpu.items():
        nts, ncpu = newer.vm_cpu.get(n, _EMPTY)
        vm_cpu[n] = ((ts + nts)[-window:], (cpu + ncpu)[-window:])
    host_cpu = dict(newer.host_cpu)
    for n, cpu in older.host_cpu.items():
        host_cpu[n] = (cpu + newer.host_cpu.get(n, ()))[-window:]
    return Recent(vm_cpu, {**older.vm_mem, **newer.vm_mem}, host_cpu,
                  {**older.host_measured, **newer.host_measured}, dict(newer.last_vm_on))
