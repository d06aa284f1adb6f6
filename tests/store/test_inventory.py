"""Inventory rows written only when they changed (ulm.store.inventory), on SQLite and
PostgreSQL: the tables end as upserting every row every round leaves them, a steady round
upserts nothing, a failed round leaves nothing remembered, a move's outcome is written in full."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.executor import Outcome, Status
from ulm.model import Move, Plan, VmState
from ulm.store import Store
from ulm.store import schema as t
from ulm.store.inventory import Inventory


def _host(ts: float, name: str, ok: bool = True, cores: int = 4,
          feats: frozenset[str] | None = None) -> HostReading:
    return HostReading(name, ts, ok, "" if ok else "refused", cores, 8192.0, 0.5 if ok else None,
                       1000.0, None, "libvirt", cpu_model="m" if feats else None,
                       cpu_features=feats)


def _vm(ts: float, name: str, host: str, vcpus: int = 1, state: VmState = VmState.RUNNING,
        labels: dict[str, str] | None = None) -> VMReading:
    return VMReading(name, host, ts, vcpus, 512.0, 0.1, 100.0, state=state, labels=labels)


def _rounds() -> Iterator[Collection]:
    """Steady rounds with a change now and then: a VM that moves, is resized, pauses, gets a
    label (read every third round only); a host that fails, comes back, grows."""
    for k in range(12):
        ts = 100.0 + 10 * k
        hosts = [_host(ts, "h1", feats=frozenset({"sse"}) if k % 4 == 0 else None),
                 _host(ts, "h2", ok=k not in (3, 4)), _host(ts, "h3", cores=8 if k >= 6 else 4)]
        labels = ({"tier": "web" if k < 7 else "db"} if k % 3 == 0 else None)
        vms = [_vm(ts, "a", "h1" if k < 5 else "h2"), _vm(ts, "b", "h1", 2 if k >= 8 else 1),
               _vm(ts, "c", "h3", state=VmState.PAUSED if k in (2, 9) else VmState.RUNNING),
               _vm(ts, "d", "h3", labels=labels)]
        if k == 5:  # mid-migration: listed on both hosts
            vms.append(_vm(ts, "b", "h2"))
        if k >= 10:
            vms.append(_vm(ts, "new", "h2"))
        yield Collection(ts, tuple(hosts), tuple(vms))


def _tables(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with store.engine.connect() as c:
        return ([tuple(r) for r in c.execute(select(t.hosts).order_by(t.hosts.c.name))],
                [tuple(r) for r in c.execute(select(t.vms).order_by(t.vms.c.name))])


def _every_row(store: Store, col: Collection) -> None:
    """What the store did before: every inventory row upserted (nothing remembered)."""
    store._inventory = Inventory()
    store.add_collection(col)


def test_the_tables_end_as_upserting_every_row_leaves_them(store: Store, tmp_path: Path) -> None:
    ref = Store.open(f"sqlite:///{tmp_path}/ref.db", mode="create")
    try:
        for col in _rounds():
            store.add_collection(col)
            _every_row(ref, col)
            assert _tables(store) == _tables(ref), col.ts
    finally:
        ref.close()


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()).upper())

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def test_a_steady_round_upserts_no_inventory_row_and_sets_last_seen(store: Store) -> None:
    cols = list(_rounds())
    store.add_collection(cols[0])
    steady = Collection(cols[1].ts, cols[1].hosts, cols[1].vms)  # nothing but time changed
    with _statements(store) as seen:
        store.add_collection(steady)
    upserts = [s for s in seen if s.startswith(("INSERT INTO HOSTS", "INSERT INTO VMS"))]
    assert upserts == []
    assert any(s.startswith("UPDATE VMS SET LAST_SEEN") for s in seen)
    hosts, vms = _tables(store)
    assert {r[0]: r[8] for r in hosts} == {"h1": 110.0, "h2": 110.0, "h3": 110.0}
    assert {r[0]: r[6] for r in vms} == {"a": 110.0, "b": 110.0, "c": 110.0, "d": 110.0}


def _fail_samples_of(store: Store, name: str) -> None:
    """A real failure inside the round's transaction: the samples insert of `name` aborts."""
    with store.engine.begin() as c:
        if store.engine.dialect.name == "sqlite":
            c.execute(text(f"CREATE TRIGGER boom BEFORE INSERT ON samples WHEN NEW.name = "
                           f"'{name}' BEGIN SELECT RAISE(ABORT, 'boom'); END"))
        else:
            c.execute(text("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                           "RAISE EXCEPTION 'boom'; END $$ LANGUAGE plpgsql"))
            c.execute(text(f"CREATE TRIGGER boom BEFORE INSERT ON samples FOR EACH ROW WHEN "
                           f"(NEW.name = '{name}') EXECUTE FUNCTION boom()"))


def _no_failure(store: Store) -> None:
    with store.engine.begin() as c:
        if store.engine.dialect.name == "sqlite":
            c.execute(text("DROP TRIGGER IF EXISTS boom"))
        else:
            c.execute(text("DROP TRIGGER IF EXISTS boom ON samples"))
            c.execute(text("DROP FUNCTION IF EXISTS boom()"))


def test_a_round_that_failed_is_not_remembered(store: Store) -> None:
    store.add_collection(Collection(100.0, (_host(100.0, "h1"),), (_vm(100.0, "a", "h1"),)))
    moved = Collection(110.0, (_host(110.0, "h2"),), (_vm(110.0, "a", "h2"),))
    _fail_samples_of(store, "a")
    try:
        with pytest.raises(Exception, match="boom"):
            store.add_collection(moved)
    finally:
        _no_failure(store)
    store.add_collection(Collection(120.0, (_host(120.0, "h2"),), (_vm(120.0, "a", "h2"),)))
    _, vms = _tables(store)
    assert (vms[0][0], vms[0][1], vms[0][7]) == ("a", "h2", 120.0)  # moved, cool-down started


def test_a_moves_outcome_makes_the_next_round_write_the_row(store: Store) -> None:
    """The executor recorded a move that the next collection, taken before it ended, does
    not show yet: the collection's reading is written (as it always was), not skipped as
    unchanged against what this process wrote before the outcome."""
    store.add_collection(Collection(100.0, (_host(100.0, "h1"), _host(100.0, "h2")),
                                    (_vm(100.0, "a", "h1"),)))
    move = Move("a", "h1", "h2", "test", 512.0)
    pid = store.save_plan(Plan("s", "p", 101.0, (move,)), "enforce")
    twin = store.twin()  # the background executor's handle: it shares what is remembered
    try:
        twin.record_outcome(pid, 1, Outcome(move, Status.DONE, "", 101.0, 105.0))
    finally:
        twin.close()
    store.add_collection(Collection(110.0, (_host(110.0, "h1"), _host(110.0, "h2")),
                                    (_vm(110.0, "a", "h1"),)))
    _, vms = _tables(store)
    assert (vms[0][1], vms[0][7]) == ("h1", 110.0)  # the reading's host, and a new cool-down


def test_a_restarted_store_writes_every_row_first(store: Store) -> None:
    col = Collection(100.0, (_host(100.0, "h1"),), (_vm(100.0, "a", "h1"),))
    store.add_collection(col)
    with store.engine.begin() as c:  # changed by hand while no daemon ran
        c.execute(t.vms.update().values(vcpus=7))
    again = Store(store.engine)  # a new process: nothing remembered
    again.add_collection(Collection(110.0, col.hosts, (_vm(110.0, "a", "h1"),)))
    _, vms = _tables(store)
    assert vms[0][2] == 1
