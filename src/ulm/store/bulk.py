"""Statements of many rows sent as the driver takes them fastest, through SQLAlchemy's
connection (its transaction and its error handling: a failure is the same `DBAPIError` as
any other statement's).

SQLAlchemy's `insert(table)` with 11,000 parameter dicts builds, processes and binds each of
them in Python; here SQLite gets one `executemany` of plain tuples (a loop in C) and
PostgreSQL one statement over arrays (`unnest`), one round trip whatever the row count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

#: The samples' columns as `insert_samples` takes them, in this order.
SAMPLE_COLUMNS = ("ts", "kind", "name", "host", "cpu", "mem_mib", "resolution_s", "source")
_PG_TYPES = ("float8", "text", "text", "text", "float8", "float8", "float8", "text")
_CHUNK = 5000  # names per IN (...): below SQLite's bound-parameter limit
_FEW_TIMES = 8  # distinct times worth one UPDATE each


def insert_samples(c: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of `SAMPLE_COLUMNS` into samples."""
    if not rows:
        return
    cols = ", ".join(SAMPLE_COLUMNS)
    if c.dialect.name == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for kind in _PG_TYPES)
        c.exec_driver_sql(f"INSERT INTO samples ({cols}) SELECT * FROM unnest({arrays})",
                          tuple(list(col) for col in zip(*rows, strict=True)))
    else:
        marks = ", ".join("?" for _ in SAMPLE_COLUMNS)
        c.exec_driver_sql(f"INSERT INTO samples ({cols}) VALUES ({marks})", list(rows))


def set_last_seen(c: Connection, table: str, seen: Sequence[tuple[str, float]]) -> None:
    """`last_seen` of the rows named (`table`: hosts or vms, never user input)."""
    if not seen:
        return
    assert table in ("hosts", "vms")
    if c.dialect.name == "postgresql":
        names, times = zip(*seen, strict=True)
        c.exec_driver_sql(
            f"UPDATE {table} SET last_seen = u.ts FROM unnest(%s::text[], %s::float8[]) "
            f"AS u(name, ts) WHERE {table}.name = u.name", (list(names), list(times)))
        return
    # SQLite: the readings of one collection share its time (`Collection.ts`), so one
    # `IN (...)` per time and chunk of names rather than one UPDATE per row
    by_ts: dict[float, list[str]] = {}
    for name, ts in seen:
        by_ts.setdefault(ts, []).append(name)
    if len(by_ts) > _FEW_TIMES:
        c.exec_driver_sql(f"UPDATE {table} SET last_seen = ? WHERE name = ?",
                          [(ts, name) for name, ts in seen])
        return
    for ts, named in by_ts.items():
        for i in range(0, len(named), _CHUNK):
            chunk = named[i:i + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            c.exec_driver_sql(f"UPDATE {table} SET last_seen = ? WHERE name IN ({marks})",
                              (ts, *chunk))
