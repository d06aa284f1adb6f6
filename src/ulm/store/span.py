"""The snapshot's window span, kept between rounds: each round reads only the rows written since.

At 10,000 VMs the span a snapshot reads (`window` intervals) is ~330,000 rows, of which one
round adds ~11,000. A `Span` keeps the span's rows in memory as columns (name codes, times,
ids, figures) and each read fetches only the rows whose id is past the newest one it has
(the primary key: a range on it is an index lookup on both engines), drops the rows older than
the span, and groups what is left with numpy, as a fresh read would.

It is checked against the table on every read: the number of rows at or after the span's start
and the sum of their ids must be the table's (one range over the `ts` index). A row it never
saw (written by another process with a lower id, committed late) or one deleted under it
changes these, and the span is read afresh; so does a span asked to start earlier than it
holds. The samples table is append-only but for retention, which rewrites rows far older than
any span (`raw_keep_s`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from ulm.store import schema as t

_s = t.samples.c


class Span:
    """The rows of samples with ts >= `lo` (also those newer than a read's `now`), by column."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one store may serve the round and the API's threads
        self._reset()

    def _reset(self) -> None:
        self.lo = float("inf")  # the span's start: nothing held
        self.last_id = 0
        self.names: list[tuple[str, str]] = []  # code -> (kind, name)
        self._code: dict[tuple[str, str], int] = {}
        empty_f = np.empty(0, dtype=np.float64)
        self.code = np.empty(0, dtype=np.int64)
        self.ids = np.empty(0, dtype=np.int64)
        self.ts, self.cpu, self.mem = empty_f, empty_f.copy(), empty_f.copy()

    def rows(self, c: Connection, lo: float, now: float, fetch: Any
             ) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(names of the groups, group starts, ts, cpu, mem): the rows of [lo, now] grouped by
        (kind, name), oldest first within each group, ties in time in the order written.
        `fetch(stmt)`: the driver's tuples of a statement (ulm.store.window)."""
        with self._lock:
            return self._rows(c, lo, now, fetch)

    def _rows(self, c: Connection, lo: float, now: float, fetch: Any
              ) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        columns = select(_s.id, _s.kind, _s.name, _s.ts, _s.cpu, _s.mem_mib)
        if lo < self.lo:  # a span that starts earlier (first read, wider window): read it all
            self._reset()  # one query, which is its own check: what the table holds from lo
            self._add(fetch(columns.where(_s.ts >= lo)), lo)
        else:
            self._trim(lo)
            self._add(fetch(columns.where(_s.id > self.last_id)), lo)
            if not self._matches(c, lo):  # rows it did not see, or rows gone: afresh
                self._reset()
                self._add(fetch(columns.where(_s.ts >= lo)), lo)
        self.lo = lo
        keep = np.flatnonzero(self.ts <= now)
        code = self.code[keep]
        starts = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1]))) \
            if len(code) else np.empty(0, dtype=np.int64)
        names = [self.names[k] for k in code[starts].tolist()]
        return names, starts, self.ts[keep], self.cpu[keep], self.mem[keep]

    def _matches(self, c: Connection, lo: float) -> bool:
        n, total = c.execute(select(func.count(), func.coalesce(func.sum(_s.id), 0))
                             .where(_s.ts >= lo)).one()
        return int(n) == len(self.ids) and int(total) == int(self.ids.sum())

    def _trim(self, lo: float) -> None:
        if len(self.ts) and self.ts.min() < lo:
            keep = self.ts >= lo
            self.code, self.ids = self.code[keep], self.ids[keep]
            self.ts, self.cpu, self.mem = self.ts[keep], self.cpu[keep], self.mem[keep]

    def _add(self, rows: Sequence[tuple[Any, ...]], lo: float) -> None:
        if not rows:
            return
        ids_, kinds, names, ts_, cpu_, mem_ = zip(*rows, strict=True)
        ids = np.asarray(ids_, dtype=np.int64)
        self.last_id = max(self.last_id, int(ids.max()))
        ts = np.asarray(ts_, dtype=np.float64)
        keys = list(zip(kinds, names, strict=True))
        for key in sorted(set(keys).difference(self._code)):  # new names; then a C-level map
            self._code[key] = len(self.names)
            self.names.append(key)
        codes = np.fromiter(map(self._code.__getitem__, keys), dtype=np.int64, count=len(ids))
        keep = ts >= lo  # by id, retention's means of old buckets come too: not the span's
        code = np.concatenate((self.code, codes[keep]))
        ids = np.concatenate((self.ids, ids[keep]))
        ts = np.concatenate((self.ts, ts[keep]))
        cpu = np.concatenate((self.cpu, np.asarray(cpu_, dtype=np.float64)[keep]))  # None: nan
        mem = np.concatenate((self.mem, np.asarray(mem_, dtype=np.float64)[keep]))
        order = np.lexsort((ids, ts, code))  # by name, then time, then as written
        self.code, self.ids = code[order], ids[order]
        self.ts, self.cpu, self.mem = ts[order], cpu[order], mem[order]
