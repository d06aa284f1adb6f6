"""The inventory rows as this process last wrote them, so that a round writes only what changed.

At 10,000 VMs a round reads ~11,000 inventory rows (hosts and VMs) of which nearly all say what
the last round said but for `last_seen`. Upserting each again (ten columns, JSON labels, the
move cool-down's CASE) was the largest part of the store write. `Inventory` keeps, per table
and name, the values each column was last SET to by this process; a round's row whose columns
all match takes only its new `last_seen` (one bulk UPDATE of two columns), one that matches but
has no `last_seen` to set (a silent host) takes nothing, and the rest are upserted as before.

Why it stays right:

* It holds only values that were committed: a round's changes are kept aside (`Pending`) and
  taken in after its transaction commits; a failed write leaves it as it was.
* One process writes the inventory: the daemon that leads (the lease). Its own other writes to
  these rows (a move's outcome, `mark_moved`) forget the VM here, also through a twin (which
  shares its original's `Inventory`). A restart, or a standby taking over, starts empty: its
  first round writes every row.
* Only columns this process SET are compared; a column it never set (a row first written by
  another process) is unknown, so the row is written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

#: Columns that change every round or are computed in SQL: never compared.
VOLATILE = frozenset({"last_seen", "last_moved_at"})


@dataclass(slots=True)
class Pending:
    """What one round wrote, taken into the `Inventory` once its transaction committed."""

    rows: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    managed: dict[str, bool] = field(default_factory=dict)
    managed_by: object = None


class Inventory:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # the round writes; executor threads forget moved VMs
        self._rows: dict[str, dict[str, dict[str, Any]]] = {}
        self._managed: dict[str, bool] = {}
        self._managed_by: object = None

    def split(self, table: str, rows: Sequence[dict[str, Any]], columns: Iterable[str],
              pending: Pending) -> tuple[list[dict[str, Any]], list[tuple[str, float]]]:
        """(rows to upsert, (name, last_seen) to set) of `rows` whose `columns` are SET: a
        row is upserted unless every compared column holds what this process last wrote and
        it starts no move (`last_moved_at`)."""
        cols = tuple(columns)
        compared = [k for k in cols if k not in VOLATILE]
        values = itemgetter(*compared)  # C-level: ~11,000 rows a round
        write: list[dict[str, Any]] = []
        touch: list[tuple[str, float]] = []
        with self._lock:
            known = self._rows.setdefault(table, {})
            for r in rows:
                had = known.get(r["name"])
                same = False
                if had is not None and r.get("last_moved_at") is None:
                    try:
                        same = values(had) == values(r)
                    except KeyError:  # a column this process never set: unknown
                        same = False
                if not same:
                    write.append(r)
                    pending.rows.append((table, r["name"], {k: r[k] for k in compared}))
                elif "last_seen" in cols:
                    touch.append((r["name"], float(r["last_seen"])))
        return write, touch

    def managed(self, fn: Callable[[str], Any], vms: Iterable[str], pending: Pending
                ) -> dict[str, bool]:
        """`fn(vm)` of each VM, asked once per VM while `fn` stays the same (the config's
        `manages`: a pattern match per VM and round)."""
        with self._lock:
            known = dict(self._managed) if self._managed_by == fn else {}
        out: dict[str, bool] = {}
        for vm in vms:
            value = known.get(vm)
            if value is None:
                value = pending.managed[vm] = bool(fn(vm))
            out[vm] = value
        pending.managed_by = fn
        return out

    def commit(self, pending: Pending) -> None:
        with self._lock:
            for table, name, values in pending.rows:
                self._rows.setdefault(table, {}).setdefault(name, {}).update(values)
            if pending.managed_by is not None:
                if self._managed_by != pending.managed_by:
                    self._managed, self._managed_by = {}, pending.managed_by
                self._managed.update(pending.managed)

    def forget(self, table: str, name: str) -> None:
        """Another write changed this row: the next round writes it in full."""
        with self._lock:
            self._rows.get(table, {}).pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
