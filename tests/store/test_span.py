"""The window span kept between snapshots (ulm.store.span): each snapshot of a store that
keeps it equals the snapshot a store reading every row afresh gives, whatever happened to the
table between them: new rows, rows written late, rows from the future, rows deleted, a window
that grows, retention."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.snapshot import Snapshot
from ulm.store import Store
from ulm.store import schema as t

WINDOW, STALE = 4, 30.0


def _round(ts: float, k: int) -> Collection:
    hosts = (HostReading("h1", ts, True, "", 4, 8192.0, 0.1 + k / 100, 1000.0, None, "libvirt"),
             HostReading("h2", ts, True, "", 4, 8192.0, None if k % 3 else 0.4, None, None,
                         "libvirt"))
    vms = [VMReading("a", "h1", ts, 1, 512.0, k / 10, 100.0 + k),
           VMReading("b", "h1" if k < 5 else "h2", ts, 1, 512.0, None if k % 2 else 0.3,
                     None)]
    if k >= 4:
        vms.append(VMReading(f"n{k % 2}", "h2", ts, 1, 512.0, 0.05 * k, None))
    return Collection(ts, hosts, tuple(vms))


def _figures(s: Snapshot) -> tuple[object, ...]:
    return (tuple((h.name, h.state, h.cpu_history, h.stale, h.empty_since) for h in s.hosts),
            tuple((v.name, v.host, v.history, v.load, v.stale, v.gone) for v in s.vms))


def _same(kept: Store, now: float, window: int = WINDOW) -> Snapshot:
    snap = kept.snapshot(now, window, STALE)
    fresh = Store(kept.engine)  # no span yet: reads every row of it
    assert _figures(snap) == _figures(fresh.snapshot(now, window, STALE)), now
    return snap


def test_a_kept_span_gives_what_a_fresh_read_gives(store: Store) -> None:
    now = 1000.0
    for k in range(12):
        now = 1000.0 + 10 * k
        store.add_collection(_round(now, k))
        snap = _same(store, now)
    assert snap.vms[0].history == (0.8, 0.9, 1.0, 1.1)  # the kept span is what is read
    # a round written late (a backlog after an outage), older than the newest rows
    store.add_collection(_round(now - 15, 20))
    _same(store, now)
    # a row from the future (a clock ahead): not in this snapshot, in a later one
    store.add_collection(_round(now + 25, 30))
    _same(store, now)
    now += 30
    store.add_collection(_round(now, 31))
    snap = _same(store, now)
    assert 3.0 in snap.vms[0].history
    # rows deleted under the span (by hand): it reads afresh
    with store.engine.begin() as c:
        c.execute(delete(t.samples).where(t.samples.c.name == "a", t.samples.c.ts >= now - 20))
    _same(store, now)
    # a row with a lower id committed after the span read past it (another writer)
    with store.engine.begin() as c:
        first = c.execute(select(t.samples).where(t.samples.c.name == "a")
                          .order_by(t.samples.c.ts)).first()
        assert first is not None
        c.execute(delete(t.samples).where(t.samples.c.id == first.id))
    store.snapshot(now, WINDOW, STALE)
    with store.engine.begin() as c:
        c.execute(insert(t.samples).values(id=first.id, ts=now - 5, kind="vm", name="a",
                                           host="h1", cpu=7.0, mem_mib=None,
                                           resolution_s=0.0, source="libvirt"))
    assert 7.0 in _same(store, now).vms[0].history
    _same(store, now, window=10)  # a wider window: a span that starts earlier
    _same(store, now, window=2)
    now += 4000  # retention's means are far older than any span; the span moves on
    store.add_collection(_round(now, 40))
    store.retention(now, raw_keep_s=3600.0, bucket_s=600.0)
    _same(store, now)
