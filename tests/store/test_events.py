"""The event stream in the store, on SQLite and PostgreSQL: written in bulk by the bus, read
back paged and filtered by the `events` route after a restart, aged by retention; and the
day's migrations counted from the journal for the daily budget."""

from __future__ import annotations

import time
from pathlib import Path

from ulm.api.bus import KEPT_ELSEWHERE, EventBus
from ulm.api.views import Reader
from ulm.model import Move, PowerOn
from ulm.notify.events import Event, Kind, Severity
from ulm.store import Store
from ulm.store.events import EventRow
from ulm.store.retention import retain_events


def _started(vm: str, src: str, dst: str, ts: float) -> dict[str, object]:
    return Event(Kind.migration_started, Severity.info, vm=vm, plan_id="p-1",
                 data={"src": src, "dst": dst}, ts=ts).to_dict()


def test_rows_are_read_back_newest_first_paged_and_filtered(store: Store) -> None:
    rows = [EventRow(ts=100.0 + i, kind="migration_started", severity="info", vm=f"v{i}",
                     src="h1", dst="h2" if i % 2 else "h3", text=f"migrating v{i}",
                     body={"i": i}) for i in range(7)]
    rows.append(EventRow(ts=200.0, kind="leader_changed", severity="info", text="leader is x"))
    store.add_events(rows)
    page, total = store.events(3)
    assert total == 8 and [r.ts for r in page] == [200.0, 106.0, 105.0]
    rest, _ = store.events(3, offset=3)
    assert [r.ts for r in rest] == [104.0, 103.0, 102.0]
    on_h2, n = store.events(10, about="h2")
    assert n == 3 and {r.vm for r in on_h2} == {"v1", "v3", "v5"}
    assert all("h2" in r.about for r in on_h2)
    assert store.events(10, about="v4")[1] == 1 and store.events(10, about="h9")[1] == 0
    leaders, n = store.events(10, kind="leader_changed")
    assert n == 1 and leaders[0].text == "leader is x" and leaders[0].body == {}
    assert page[1].body == {"i": 6}


def test_events_survive_a_restart_of_the_bus_and_history_reads_them(store: Store) -> None:
    now = time.time()
    bus = EventBus(store=store, flush_s=3600)  # no timed flush in this test: close writes
    bus.publish(Kind.migration_started.value, _started("web1", "h1", "h2", now - 30))
    bus.publish("round", {"actions": 1})  # written for the stream; History reads the plans
    bus.publish("mode", {"mode": "enforce", "was": "advise", "by": "admin-1"})
    # not written yet: the route shows them from the bus
    before = Reader(store, None, bus=bus).events(0, 50)
    assert [e.kind for e in before.events] == ["mode", "migration_started"]
    assert store.events(10)[1] == 0
    bus.close()
    saved, n = store.events(10, exclude=KEPT_ELSEWHERE)
    assert n == 2 and {r.kind for r in saved} == {"mode", "migration_started"}
    assert [r.id for r in store.events_after(0)] == [1, 2, 3]  # the stream's ids

    later = EventBus(store=store, flush_s=3600)  # a new process: nothing in memory
    page = Reader(store, None, bus=later).events(0, 50)
    assert [e.kind for e in page.events] == ["mode", "migration_started"] and page.total == 2
    started = page.events[1]
    assert started.ts == round(now - 30, 3) and started.subject == "web1"
    assert started.about == ["web1", "h1", "h2"]
    assert started.detail == "migrating web1 h1 -> h2" and started.plan_id == "p-1"
    assert page.events[0].detail == "mode: mode enforce, was advise, by admin-1"
    by_host = Reader(store, None, bus=later).events(0, 50, about="h2")
    assert [e.kind for e in by_host.events] == ["migration_started"]
    later.publish(Kind.migration_started.value, _started("db1", "h3", "h1", now))
    mixed = Reader(store, None, bus=later).events(0, 1, about="h1")
    assert mixed.total == 2 and mixed.events[0].subject == "db1"  # unsaved and saved, paged
    later.close()
    assert store.events(10, exclude=KEPT_ELSEWHERE)[1] == 3
    # the new bus numbered on from the store's highest: ids are the rows', never reused
    assert [r.id for r in store.events_after(0)] == [1, 2, 3, 4]


def test_a_store_that_takes_no_writes_keeps_the_events_in_memory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ulm.db"
    Store.open(url, mode="create").close()
    ro = Store.open(url, mode="read")
    bus = EventBus(store=ro, flush_s=3600, max_unsaved=2)
    for i in range(3):
        bus.publish("mode", {"mode": "observe", "by": f"admin-{i}"})
    assert bus.flush() == 0 and bus.lost == 1  # refused (logged), the oldest dropped
    page = Reader(ro, None, bus=bus).events(0, 10)
    assert [e.detail for e in page.events] == ["mode: mode observe, by admin-2",
                                               "mode: mode observe, by admin-1"]
    rw = Store.open(url, mode="write")
    bus._store = rw  # the same database, now writable: the next flush writes them
    assert bus.flush() == 2 and rw.events(10)[1] == 2
    bus.close()
    ro.close()
    rw.close()


def test_retention_ages_events_and_bounds_their_number(store: Store) -> None:
    store.add_events([EventRow(ts=float(t), kind="condition", text=f"#{t}")
                      for t in range(0, 100, 10)])
    store.retention(now=3600.0 * 24 * 10, raw_keep_s=3600.0, keep_s=3600.0 * 24 * 10 - 45)
    assert [r.ts for r in store.events(20)[0]] == [90.0, 80.0, 70.0, 60.0, 50.0]
    with store.engine.begin() as c:
        assert retain_events(c, 0.0, 2) == 3
    assert [r.ts for r in store.events(20)[0]] == [90.0, 80.0]


def test_the_snapshot_counts_the_migrations_started_since_the_day_began(store: Store) -> None:
    moves = [Move(f"v{i}", "h1", "h2", "test", 512.0) for i in range(3)]
    for i, m in enumerate(moves):
        entry = store.intent("p-1", i + 1, m)
        store.update(entry, "done" if i else "failed")  # a failed one was started too
    store.intent("p-1", 4, PowerOn("h3", "wake"))  # a power action is no migration
    now = time.time()
    assert store.snapshot(now, 4, 60.0, day_start=now - 600).migrations_today == 3
    assert store.snapshot(now, 4, 60.0, day_start=now + 1).migrations_today == 0
    assert store.snapshot(now, 4, 60.0).migrations_today == 3  # UTC midnight by default
