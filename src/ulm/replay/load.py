"""The cluster as ULM recorded it over a window, rebuilt from the store for the simulator.

Inventory: the hosts the store knows (capacity, power curve) and every VM that has a sample in
the window (vCPUs, memory, managed or not). Load: each VM's CPU and memory samples, averaged in
5-minute buckets from `since` (the simulator's step), as fractions of the VM's own size — the
`ulm export samples` trace, over any number of buckets. Start: each VM on the host of its first
sample; hosts whose last recorded power action before `since` was a power-off start off.
Maintenance bookings that were not cancelled mark their hosts for maintenance while they last.

Gaps are never interpolated. A bucket without any sample at all is the daemon down; a VM
bucket without a sample before the VM's first or after its last is the VM not running (no
demand); one in between (its host off or unreachable, the daemon down) follows `GapRule`:
`hold` repeats the VM's last measured bucket, `zero` counts no demand. Every kind is counted
in `Gaps` and reported.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Row, select

from ulm.arrays import F64, I64, B
from ulm.energy import DEFAULT_CURVE
from ulm.errors import UlmError
from ulm.model import PowerCurve
from ulm.sim.traces import INTERVAL_S, Trace
from ulm.store import Store
from ulm.store import schema as t

#: Bookings that never took their host away (refused, withdrawn): not replayed.
_NOT_HAPPENED = ("cancelled", "blocked")
#: The simulator accounts from its first round to its last: the first and the last bucket
#: only frame the span, so three buckets are the least that compares anything.
MIN_BUCKETS = 3


class GapRule(enum.StrEnum):
    hold = "hold"
    zero = "zero"


@dataclass(frozen=True, slots=True)
class Gaps:
    rule: GapRule
    cells: int  # VMs x buckets
    filled: int  # cells inside a VM's life with no sample, filled by `rule`
    absent: int  # cells before a VM's first or after its last sample: not running
    daemon_down: tuple[tuple[float, float], ...]  # spans without any sample at all
    host_missing: int  # host-buckets without a host figure while the daemon recorded
    hosts_left_out: tuple[str, ...]  # in the store, never measured: no capacity known
    vms_left_out: tuple[str, ...]  # sampled, but their host is not in the inventory

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule.value, "cells": self.cells, "filled": self.filled,
                "absent": self.absent, "daemon_down": [list(s) for s in self.daemon_down],
                "host_buckets_missing": self.host_missing,
                "hosts_left_out": list(self.hosts_left_out),
                "vms_left_out": list(self.vms_left_out)}


@dataclass(frozen=True, eq=False)
class Recording:
    """What the simulator needs, indexed like its columns (hosts i, VMs v, buckets k)."""

    since: float
    until: float
    trace: Trace  # cpu, mem: V x K fractions of each VM's size
    host_names: tuple[str, ...]
    host_cpu: F64  # cpu units (cores)
    host_cores: I64
    host_mem: F64  # MiB
    host_curve: tuple[PowerCurve, ...]
    vm_vcpus: I64
    vm_mem: F64  # MiB
    vm_managed: B
    vm_home: I64  # V x K: the host of the VM's last sample in the bucket, -1 none
    vm_start: I64  # the host of the VM's first sample in the window
    measured: B  # V x K: the VM has a CPU sample in the bucket
    host_up: B  # H x K: the host gave a figure in the bucket
    off_at_start: B
    maintenance: tuple[tuple[int, float, float], ...]  # (host, start, end) epoch seconds
    bw_mib_s: float
    gaps: Gaps

    @property
    def buckets(self) -> int:
        return self.trace.samples


def load(store: Store, since: float, until: float, rule: GapRule,
         default_curves: dict[str, PowerCurve] | None = None) -> Recording:
    """The recording in [since, until), trimmed to the buckets from the first sample to the
    last (before and after, the daemon recorded nothing: there is nothing to compare)."""
    s = t.samples
    with store.engine.connect() as c:
        rows = c.execute(select(s.c.ts, s.c.kind, s.c.name, s.c.host, s.c.cpu, s.c.mem_mib)
                         .where(s.c.ts >= since, s.c.ts < until).order_by(s.c.ts)).all()
        if not rows:
            raise UlmError("no samples in the window: nothing to replay (the daemon recorded "
                           "nothing then; try another --since)")
        col = _Columns.of(rows)
        del rows
        first = since + math.floor((col.ts[0] - since) / INTERVAL_S) * INTERVAL_S
        # counted, not divided out of a difference of epochs (899.9999 s is not 3 buckets)
        buckets = min(math.floor((col.ts[-1] - first) / INTERVAL_S) + 1,
                      math.floor((until - first) / INTERVAL_S + 1e-6))
        since = first
        if buckets < MIN_BUCKETS:
            raise UlmError(f"the recording in the window spans {buckets} bucket(s) of "
                           f"{INTERVAL_S:.0f} s: a replay needs at least {MIN_BUCKETS}; give "
                           "a longer window")
        until = since + buckets * INTERVAL_S  # whole buckets only: a partial one reads low
        host_rows = c.execute(select(t.hosts).order_by(t.hosts.c.name)).all()
        vm_rows = {r.name: r for r in c.execute(select(t.vms))}
        curves = {r.name: PowerCurve(r.name, tuple(float(w) for w in r.watts))
                  for r in c.execute(select(t.power_models))}
        events = c.execute(select(t.power_events.c.host, t.power_events.c.action)
                           .where(t.power_events.c.result == "done",
                                  t.power_events.c.ts < since)
                           .order_by(t.power_events.c.ts)).all()
        bookings = c.execute(select(t.maintenance)
                             .where(t.maintenance.c.start < until,
                                    t.maintenance.c.end > since)).all()
    known = [h for h in host_rows if h.mem_mib > 0 and h.cpu > 0 and h.last_seen > 0]
    hosts = tuple(h.name for h in known)
    if not hosts:
        raise UlmError("the store holds no measured host: nothing to replay (has the daemon "
                       "run?)")
    hidx = {n: i for i, n in enumerate(hosts)}
    inside = col.ts < until
    # clipped: a sample a rounding error short of `until` stays in the last bucket
    bucket = np.clip((col.ts - since) // INTERVAL_S, 0, buckets - 1).astype(np.int64)
    any_sample = np.zeros(buckets, np.bool_)
    any_sample[bucket[inside]] = True
    # the VMs' samples, by VM and host index
    vm_mask = inside & col.is_vm
    seen = sorted({col.names[i] for i in np.unique(col.name[vm_mask]).tolist()})
    vm_code = col.recode(col.name[vm_mask], {n: i for i, n in enumerate(seen)})
    host_code = col.recode(col.host[vm_mask], hidx)
    bad = np.zeros(len(seen), np.bool_)
    bad[vm_code[host_code < 0]] = True
    bad |= np.array([n not in vm_rows for n in seen], np.bool_)
    left_out = tuple(n for n, b in zip(seen, bad.tolist(), strict=True) if b)
    names = tuple(n for n, b in zip(seen, bad.tolist(), strict=True) if not b)
    if not names:
        raise UlmError("no VM samples in the window: nothing to replay (the daemon recorded "
                       "nothing then; try another --since)")
    renum = np.cumsum(~bad) - 1
    keep = ~bad[vm_code]
    vcpus = np.array([max(int(vm_rows[n].vcpus), 1) for n in names], np.int64)
    vmem = np.array([max(float(vm_rows[n].mem_mib), 1.0) for n in names])
    cpu, cpu_n, mem, mem_n, home, start = _buckets(
        renum[vm_code[keep]], bucket[vm_mask][keep], host_code[keep], col.cpu[vm_mask][keep],
        col.mem[vm_mask][keep], len(names), buckets, vcpus, vmem)
    measured = cpu_n > 0
    host_up = np.zeros((len(hosts), buckets), np.bool_)
    up = inside & ~col.is_vm & ~np.isnan(col.cpu)
    hc = col.recode(col.name[up], hidx)
    host_up[hc[hc >= 0], bucket[up][hc >= 0]] = True
    cpu_f, alive, filled = _fill(cpu, measured, rule)
    mem_f = _fill_mem(mem, mem_n > 0, alive, rule)
    last_action = {e.host: e.action for e in events}
    defaults = default_curves or {}
    host_curve = tuple(curves.get(h.power) or defaults.get(h.name) or DEFAULT_CURVE
                       for h in known)
    gaps = Gaps(rule, int(cpu.size), filled, int((~alive).sum()), _spans(any_sample, since),
                int((~host_up[:, any_sample]).sum()),
                tuple(h.name for h in host_rows if h.name not in hidx), left_out)
    trace = Trace(f"recorded:{since:.0f}", "gcd", names, cpu_f, mem_f)
    return Recording(
        since, until, trace, hosts,
        np.array([float(h.cpu) for h in known]),
        np.array([max(int(h.cores), 1) for h in known], np.int64),
        np.array([float(h.mem_mib) for h in known]), host_curve, vcpus, vmem,
        np.array([bool(vm_rows[n].managed) for n in names], np.bool_), home, start, measured,
        host_up,
        np.array([last_action.get(h) == "off" for h in hosts], np.bool_),
        tuple((hidx[b.host], max(b.start, since), min(b.end, until)) for b in bookings
              if b.host in hidx and b.status not in _NOT_HAPPENED),
        store.migration_speed(), gaps)


@dataclass(frozen=True, eq=False)
class _Columns:
    """The samples column by column (a week of a few hundred VMs is a million rows); names
    and hosts as codes into `names` (a dict per row is cheaper than sorting strings)."""

    ts: F64
    is_vm: B
    name: I64
    host: I64
    names: tuple[str, ...]
    cpu: F64  # NaN: no figure
    mem: F64

    @classmethod
    def of(cls, rows: Sequence[Row[Any, Any, Any, Any, Any, Any]]) -> _Columns:
        ts, kind, name, host, cpu, mem = zip(*rows, strict=True)
        # float() of None is NaN in numpy's conversion; a non-finite figure counts as none
        cpu_a, mem_a = np.array(cpu, np.float64), np.array(mem, np.float64)
        cpu_a[~np.isfinite(cpu_a)] = np.nan
        mem_a[~np.isfinite(mem_a)] = np.nan
        code: dict[str, int] = {}
        n = len(ts)
        name_c = np.fromiter((code.setdefault(x, len(code)) for x in name), np.int64, n)
        host_c = np.fromiter((code.setdefault(x, len(code)) for x in host), np.int64, n)
        return cls(np.array(ts, np.float64), np.array(kind, object) == "vm", name_c, host_c,
                   tuple(code), cpu_a, mem_a)

    def recode(self, codes: I64, index: dict[str, int]) -> I64:
        """Codes as indices into another list of names, -1 for a name not in it."""
        table = np.array([index.get(n, -1) for n in self.names], np.int64)
        return np.asarray(table[codes])


def _buckets(v: I64, b: I64, h: I64, cpu_v: F64, mem_v: F64, n: int, k: int, vcpus: I64,
             vmem: F64) -> tuple[F64, F64, F64, F64, I64, I64]:
    """Means per (VM, bucket) of CPU (share of vCPUs, at most all of them) and memory (share
    of its size); sample counts; the host of the bucket's last sample; the host of each VM's
    first sample. The samples are in time order."""
    cell = v * k + b
    has_cpu, has_mem = ~np.isnan(cpu_v), ~np.isnan(mem_v)
    size = n * k
    cpu_n = np.bincount(cell, weights=has_cpu, minlength=size).reshape(n, k)
    cpu = np.bincount(cell, weights=np.where(has_cpu, cpu_v, 0.0), minlength=size).reshape(n, k)
    mem_n = np.bincount(cell, weights=has_mem, minlength=size).reshape(n, k)
    mem = np.bincount(cell, weights=np.where(has_mem, mem_v, 0.0), minlength=size).reshape(n, k)
    cpu_mean = np.divide(cpu, cpu_n, out=np.zeros_like(cpu), where=cpu_n > 0) / vcpus[:, None]
    mem_mean = np.divide(mem, mem_n, out=np.zeros_like(mem), where=mem_n > 0) / vmem[:, None]
    home = np.full(size, -1, np.int64)
    home[cell] = h  # in time order: the last sample of a bucket is written last
    first = np.full(n, -1, np.int64)
    first[v[::-1]] = h[::-1]  # reversed: each VM's first sample is written last
    return (np.clip(cpu_mean, 0.0, 1.0), cpu_n, np.maximum(mem_mean, 0.0), mem_n,
            home.reshape(n, k), first)


def _life(measured: B) -> B:
    """Per VM, the buckets from its first sample to its last."""
    k = measured.shape[1]
    first = np.where(measured.any(axis=1), measured.argmax(axis=1), k)
    last = k - 1 - measured[:, ::-1].argmax(axis=1)
    cols = np.arange(k)
    return np.asarray((cols >= first[:, None]) & (cols <= last[:, None]))


def _hold(values: F64, measured: B) -> F64:
    """Each unmeasured cell takes the VM's last measured cell before it (0 before any)."""
    k = values.shape[1]
    idx = np.where(measured, np.arange(k), -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(values, np.maximum(idx, 0), axis=1)
    return np.asarray(np.where(idx >= 0, out, 0.0))


def _fill(cpu: F64, measured: B, rule: GapRule) -> tuple[F64, B, int]:
    alive = _life(measured)
    gap = alive & ~measured
    filled = _hold(cpu, measured) if rule is GapRule.hold else cpu
    out = np.where(alive, np.where(gap, filled, cpu), 0.0)
    return np.asarray(out), alive, int(gap.sum())


def _fill_mem(mem: F64, measured: B, alive: B, rule: GapRule) -> F64 | None:
    if not measured.any():
        return None  # no memory figures at all: the simulator reserves nominal sizes
    base = _hold(mem, measured) if rule is GapRule.hold else np.where(measured, mem, 0.0)
    # a VM never measured for memory uses its nominal size while it runs
    never = ~measured.any(axis=1)
    base[never] = 1.0
    return np.asarray(np.where(alive, base, 0.0))


def _spans(any_sample: B, since: float) -> tuple[tuple[float, float], ...]:
    out: list[tuple[float, float]] = []
    start: int | None = None
    for k, seen in enumerate([*any_sample.tolist(), True]):
        if not seen and start is None:
            start = k
        elif seen and start is not None:
            out.append((since + start * INTERVAL_S, since + k * INTERVAL_S))
            start = None
    return tuple(out)
