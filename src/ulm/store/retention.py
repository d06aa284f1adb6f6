"""Retention in bounded steps: raw samples become bucket means, old means expire.

At 10,000 VMs an hour of raw samples is ~660,000 rows; downsampling a backlog of them in one
transaction holds the round for seconds. A step does at most about `max_rows` rows, oldest
bucket first and a slice of names at a time: each name's rows of one bucket are averaged,
deleted and replaced by their mean in one go, so a step can stop anywhere and the next one
goes on where it stopped (the rows already done are gone). What steps leave behind once all
are done is what one unbounded pass at the same time would leave.

The event stream's rows (`events`) age with the samples' means (`keep_s`), and never number
more than `MAX_EVENTS`: the oldest go first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.engine import Connection

from ulm.store import schema as t

NAMES_PER_STATEMENT = 250  # names downsampled per statement (each ~bucket/interval rows)
MAX_NAMES = 5000  # at most, where each name has few rows (below the bound-parameter limits)
MAX_EVENTS = 100_000  # event rows kept at most (a busy month; a flood must not fill the disk)
_s = t.samples.c


@dataclass(frozen=True, slots=True)
class RetentionStep:
    downsampled: int  # raw rows replaced by bucket means
    expired: int  # rows deleted for being older than keep_s
    done: bool  # nothing older than the cutoffs is left: no need for another step


def step(c: Connection, now: float, raw_keep_s: float, bucket_s: float, keep_s: float,
         max_rows: int | None) -> RetentionStep:
    """At most about `max_rows` rows (None: all there is), in the caller's transaction."""
    budget = math.inf if max_rows is None else max(int(max_rows), 1)
    cutoff = now - raw_keep_s
    raw_left, downsampled, names = True, 0, NAMES_PER_STATEMENT
    while downsampled < budget:
        n, did = _downsample_some(c, cutoff, bucket_s, names)
        if n == 0:
            raw_left = False
            break
        downsampled += n
        # as many names next as the rows left allow at this slice's rows per name: a bucket
        # only a minute past the cutoff has one row per name (the first step after a day:
        # 11,000 names at 10,000 VMs were 45 slices of 250, seconds of statements)
        names = int(min(MAX_NAMES, max(NAMES_PER_STATEMENT,
                                       (min(budget, 60_000) - downsampled) * did / n)))
    expired, expire_left = 0, True
    oldest = c.execute(select(func.min(_s.ts))).scalar()  # one index lookup
    if oldest is None or float(oldest) >= now - keep_s:
        expire_left = False  # the usual case: nothing has expired, no DELETE at all
    while expire_left and downsampled + expired < budget:
        limit = NAMES_PER_STATEMENT * 60 if max_rows is None else \
            max(int(budget) - downsampled - expired, 1)
        ids = select(_s.id).where(_s.ts < now - keep_s).limit(limit).scalar_subquery()
        n = int(c.execute(delete(t.samples).where(_s.id.in_(ids))).rowcount or 0)
        expired += n
        if n < limit:
            expire_left = False
            break
    done = not raw_left and not expire_left
    if done:  # a few rows per host and BMC reading interval: one pass
        _retain_readings(c, cutoff, bucket_s, now - keep_s)
        expired += retain_events(c, now - keep_s, MAX_EVENTS)
    return RetentionStep(downsampled, expired, done)


def retain_events(c: Connection, expire: float, keep_rows: int) -> int:
    """Events older than `expire` go, and the oldest beyond the newest `keep_rows`: the rows
    deleted (index lookups: the usual step deletes nothing)."""
    e = t.events.c
    n = int(c.execute(delete(t.events).where(e.ts < expire)).rowcount or 0)
    edge = c.execute(select(e.id).order_by(e.id.desc()).offset(keep_rows).limit(1)).scalar()
    if edge is not None:
        n += int(c.execute(delete(t.events).where(e.id <= edge)).rowcount or 0)
    return n


def _downsample_some(c: Connection, cutoff: float, bucket_s: float, per: int
                     ) -> tuple[int, int]:
    """One slice of names of the oldest bucket holding raw rows older than `cutoff`: their
    rows there (up to the cutoff) become one mean each. Returns the raw rows replaced and the
    names done (at most `per`)."""
    raw = _s.resolution_s == 0.0
    oldest = c.execute(select(func.min(_s.ts)).where(raw, _s.ts < cutoff)).scalar()
    if oldest is None:
        return 0, 0
    b = math.floor(float(oldest) / bucket_s) * bucket_s
    end = min(b + bucket_s, cutoff)
    in_bucket = (raw, _s.ts >= b, _s.ts < end)
    # The first rows of the bucket name names not done yet (the done ones' rows are gone).
    first = c.execute(select(_s.kind, _s.name).where(*in_bucket).order_by(_s.ts)
                      .limit(per)).all()
    replaced = 0
    for kind in sorted({k for k, _ in first}):
        names = sorted({n for k, n in first if k == kind})
        these = slice_of(b, end, kind)
        groups = c.execute(
            select(_s.name, func.max(_s.host), func.avg(_s.cpu), func.avg(_s.mem_mib),
                   func.max(_s.source)).where(*these).group_by(_s.name), {"n": names}).all()
        replaced += int(c.execute(delete(t.samples).where(*these), {"n": names}).rowcount or 0)
        c.execute(insert(t.samples), [
            {"ts": float(b), "kind": kind, "name": name, "host": host, "cpu": cpu,
             "mem_mib": mem, "resolution_s": bucket_s, "source": source}
            for name, host, cpu, mem, source in groups])
    return replaced, len(set(first))


def slice_of(b: float, end: float, kind: str) -> tuple[Any, ...]:
    """The raw rows of [b, end) of the names bound as `n`. `resolution_s + 0` keeps SQLite
    (no statistics) off the (resolution_s, ts) index, which would walk the whole bucket
    (~660,000 rows at 10,000 VMs) for each slice of names: (kind, name, ts) reads only the
    slice's rows."""
    return (_s.resolution_s + 0.0 == 0.0, _s.ts >= b, _s.ts < end, _s.kind == kind,
            _s.name.in_(bindparam("n", expanding=True)))


def _retain_readings(c: Connection, cutoff: float, bucket_s: float, expire: float) -> None:
    """Power readings age like samples: raw ones become bucket means, then expire."""
    p = t.power_readings
    bucket = func.floor(p.c.ts / bucket_s) * bucket_s
    old = (p.c.ts < cutoff) & (p.c.resolution_s == 0.0)
    groups = c.execute(select(bucket.label("b"), p.c.host, func.avg(p.c.watts).label("w"))
                       .where(old).group_by(bucket, p.c.host)).all()
    c.execute(delete(p).where(old))
    if groups:
        c.execute(insert(p), [dict(ts=float(g.b), host=g.host, watts=float(g.w),
                                   resolution_s=bucket_s) for g in groups])
    c.execute(delete(p).where(p.c.ts < expire))
