"""The collection write path: one round's inventory and samples as a few bulk statements.

At 10,000 VMs a round is ~11,000 inventory rows and ~11,000 samples. A SELECT then an UPDATE
per row is ~22,000 statements; here the inventory rows that changed since this process last
wrote them (`ulm.store.inventory`) are `INSERT ... ON CONFLICT DO UPDATE` executemany calls
(SQLite and PostgreSQL have the same upsert), the others only take their `last_seen` (one bulk
UPDATE), and the samples are one bulk insert (`ulm.store.bulk`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.model import VmState
from ulm.store import schema as t
from ulm.store.bulk import insert_samples, set_last_seen
from ulm.store.inventory import Inventory, Pending

#: Sources that know which hosts exist and answer (libvirt; Prometheus when it is the
#: source); munin only reports figures.
INVENTORY = ("libvirt", "prometheus", "")

_SIZE = ("cpu", "cores", "mem_mib", "last_seen")


def add_collection(c: Connection, col: Collection, managed: Callable[[str], Any] | None,
                   inventory: Inventory | None = None) -> Pending:
    """Inventory and samples of one collection round (the caller holds the transaction).
    Returns what to take into `inventory` once the transaction committed (`Inventory.commit`);
    without one, every inventory row is upserted."""
    inv = inventory if inventory is not None else Inventory()
    pending = Pending()
    # libvirt (or Prometheus, as the source) is the inventory's authority; a silent
    # munin-node says nothing about whether the hypervisor is up.
    _upsert_hosts(c, [h for h in col.hosts if h.source in INVENTORY], inv, pending)
    _upsert_vms(c, col.vms, managed, inv, pending)
    rows = [(h.ts, "host", h.host, h.host, h.cpu, h.mem_used_mib, 0.0, h.source)
            for h in col.hosts if h.ok]
    rows += [(v.ts, "vm", v.vm, v.host, v.cpu, v.mem_used_mib, 0.0, "libvirt") for v in col.vms]
    insert_samples(c, rows)
    return pending


def _upsert(c: Connection, table: Table) -> Any:
    """The dialect's INSERT that takes `on_conflict_do_update` (the same on both engines)."""
    dialect = c.engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"store engine {dialect!r}: only sqlite and postgresql")


def _upsert_hosts(c: Connection, readings: Sequence[HostReading], inv: Inventory,
                  pending: Pending) -> None:
    """A new host gets its row; a known one takes its reachability, and its size only when it
    answered (a silent host keeps its last known size). A host read twice in one round ends as
    if the readings had been applied in turn."""
    fresh: dict[str, dict[str, Any]] = {}  # hosts with an answer this round
    silent: dict[str, dict[str, Any]] = {}  # hosts that only failed this round
    for h in readings:
        row = {"name": h.host, "cpu": float(max(h.cores, 1)), "cores": max(h.cores, 1),
               "mem_mib": h.mem_total_mib, "reachable": h.ok, "error": h.error,
               "labels": {}, "power": "", "last_seen": h.ts,
               # a silent host is not judged: its quarantine (if any) ends with its answers
               "quarantine": h.quarantine if h.ok else "",
               "cpu_model": h.cpu_model or "", "cpu_features": sorted(h.cpu_features or ()),
               "_cpu": h.ok and h.cpu_features is not None}  # set the CPU columns (below)
        if h.ok:
            silent.pop(h.host, None)
            fresh[h.host] = row
        elif h.host in fresh:  # answered, then failed: the answer's size, the failure's state
            fresh[h.host] = {**fresh[h.host], "reachable": False, "error": h.error}
        else:
            # silent twice: the first reading made the row (if new), the second sets the state
            first = silent.get(h.host, row)
            silent[h.host] = {**first, "reachable": False, "error": h.error}
    state = ("reachable", "error", "quarantine")
    # a source that does not read the host's CPU (None) leaves the stored one as it is
    for cpu in (True, False):
        _insert_or_set(c, t.hosts, [r for r in fresh.values() if r["_cpu"] is cpu],
                       (*state, *_SIZE, *(_CPU if cpu else ())), inv, pending)
    _insert_or_set(c, t.hosts, list(silent.values()), state, inv, pending)


_CPU = ("cpu_model", "cpu_features")


def _insert_or_set(c: Connection, table: Table, rows: list[dict[str, Any]],
                   columns: Sequence[str], inv: Inventory, pending: Pending) -> None:
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    rows, seen = inv.split(table.name, rows, columns, pending)
    set_last_seen(c, table.name, seen)
    if not rows:
        return
    stmt = _upsert(c, table)
    c.execute(stmt.on_conflict_do_update(index_elements=[table.c.name],
                                         set_={k: stmt.excluded[k] for k in columns}), rows)


def _upsert_vms(c: Connection, readings: Sequence[VMReading],
                managed: Callable[[str], Any] | None, inv: Inventory, pending: Pending) -> None:
    """A VM whose host changed (moved by ULM or by someone else) starts its cool-down: its
    `last_moved_at` becomes the reading's time. A VM listed on two hosts in one round (during a
    migration) ends on the last one, as moved, and running if either copy runs (the copy
    arriving on the destination is paused until the migration ends: not the VM's state)."""
    rows: dict[str, dict[str, Any]] = {}
    flags = None if managed is None else inv.managed(managed, (v.vm for v in readings), pending)
    for v in readings:
        before = rows.get(v.vm)
        moved = before is not None and (before["host"] != v.host
                                        or before["last_moved_at"] is not None)
        # labels and CPU features only from a source that reads them (libvirt's domain XML);
        # a copy that does not (None) keeps what another copy this round said
        labels = dict(v.labels) if v.labels is not None else (
            before["labels"] if before is not None and before["_labels"] else None)
        feats = sorted(v.cpu_features) if v.cpu_features is not None else (
            before["cpu_features"] if before is not None and before["_feats"] else None)
        rows[v.vm] = {"name": v.vm, "host": v.host, "vcpus": v.vcpus, "mem_mib": v.mem_mib,
                      "labels": labels or {}, "_labels": labels is not None,
                      "cpu_features": feats or [], "_feats": feats is not None,
                      "managed": True if flags is None else flags[v.vm],
                      "last_seen": v.ts, "last_moved_at": v.ts if moved else None,
                      "state": (VmState.RUNNING if before is not None
                                and before["state"] == VmState.RUNNING else v.state).value}
    groups: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
    for r in rows.values():
        groups.setdefault((r.pop("_labels"), r.pop("_feats")), []).append(r)
    base = ("host", "vcpus", "mem_mib", "last_seen", "managed", "last_moved_at", "state")
    for (set_labels, set_feats), rows_of in groups.items():
        group, seen = inv.split("vms", rows_of, (*base, *(("labels",) if set_labels else ()),
                                                 *(("cpu_features",) if set_feats else ())),
                                pending)
        set_last_seen(c, "vms", seen)
        if not group:
            continue
        stmt = _upsert(c, t.vms)
        new = stmt.excluded
        # SET sees the row as it was: `t.vms.c.host` is the host before this round
        moved_at = case((t.vms.c.host != new.host, new.last_seen),
                        (new.last_moved_at.is_not(None), new.last_moved_at),
                        else_=t.vms.c.last_moved_at)
        extra = {**({"labels": new.labels} if set_labels else {}),
                 **({"cpu_features": new.cpu_features} if set_feats else {})}
        c.execute(stmt.on_conflict_do_update(index_elements=[t.vms.c.name], set_={
            "host": new.host, "vcpus": new.vcpus, "mem_mib": new.mem_mib,
            "last_seen": new.last_seen, "managed": new.managed, "last_moved_at": moved_at,
            "state": new.state, **extra}), group)
