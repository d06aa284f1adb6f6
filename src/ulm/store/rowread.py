"""The inventory's rows as the snapshot reads them: 11,000 a round at 1,000 hosts / 10,000 VMs.

Each host and VM row has two JSON columns (labels, CPU features). Through SQLAlchemy's JSON
type every value is decoded on its own: 22,000 `json.loads` a round, ~0.6 s of a profiled 4 s
round at that size (`benchmarks/daemon_scale.py --profile`), for texts that are nearly all the
same few ("{}", "[]", a cluster's handful of label sets and CPU feature lists). Read as text,
each distinct text is decoded once per read. The decoded values are shared by the rows of one
read: `rows.build_snapshot` copies them (a dict, a frozenset) and nothing mutates them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import JSON, Text, cast, select
from sqlalchemy.engine import Connection

R = TypeVar("R")

_UNSEEN = object()


def read_rows(c: Connection, table: Any, make: Callable[..., R], fields: Sequence[str],
              where: Any = None) -> list[R]:
    """`make(*columns)` for each row of `table` (matching `where`), the columns `fields` in
    that order, the JSON ones decoded as the JSON type decodes them (SQL NULL stays None)."""
    decode = [isinstance(table.c[f].type, JSON) for f in fields]
    query = select(*(cast(table.c[f], Text).label(f) if d else table.c[f]
                     for f, d in zip(fields, decode, strict=True)))
    if where is not None:
        query = query.where(where)
    at = [i for i, d in enumerate(decode) if d]
    seen: dict[str, Any] = {}
    out: list[R] = []
    for row in c.execute(query):
        values = list(row)
        for i in at:
            text = values[i]
            if text is None:
                continue
            value = seen.get(text, _UNSEEN)
            if value is _UNSEEN:
                value = seen[text] = json.loads(text)
            values[i] = value
        out.append(make(*values))
    return out
