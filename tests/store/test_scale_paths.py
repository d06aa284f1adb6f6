"""The store's bulk paths (ulm.store.writes, .window, .retention) against what they replace:
every figure of the snapshot as reading every sample of the look-back would give it, the
inventory as row-by-row upserts would leave it, retention in steps as one pass would."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.store import Store
from ulm.store import schema as t
from ulm.store.retention import slice_of

NOW, WINDOW, STALE = 1000.0, 4, 30.0  # window read: the last 40 s; look-back: 240 s
SINCE = NOW - WINDOW * STALE * 2


def _host(ts: float, name: str, ok: bool = True, cpu: float | None = 0.5) -> HostReading:
    return HostReading(name, ts, ok, "" if ok else "refused", 4, 8192.0, cpu if ok else None,
                       1000.0, None, "libvirt")


def _history(ts: float) -> Collection:
    """One round: steady VMs, a VM whose memory figure stopped, one seen only long ago, one
    new, one that left h3 (which is empty since), h2 silent since 900, h4 since 700."""
    hosts = [_host(ts, "h1", cpu=ts / 2000), _host(ts, "h3", cpu=0.1)]
    hosts.append(_host(ts, "h2", cpu=0.7) if ts <= 900 else _host(ts, "h2", ok=False))
    if ts == 700:
        hosts.append(_host(ts, "h4", cpu=0.2))
    vms = [VMReading("steady", "h1", ts, 1, 512.0, ts / 10000, ts),
           VMReading("nomem", "h1", ts, 1, 512.0, 0.3, 200.0 if ts <= 900 else None),
           VMReading("mover", "h3" if ts <= 880 else "h1", ts, 1, 512.0, ts / 5000, 100.0)]
    if ts in (800.0, 850.0):
        vms.append(VMReading("old", "h1", ts, 1, 512.0, ts / 1000, 50.0))
    if ts >= 990:
        vms.append(VMReading("new", "h1", ts, 1, 512.0, 0.25, None))
    return Collection(ts, tuple(hosts), tuple(vms))


def test_the_window_read_gives_what_reading_the_whole_look_back_gives(store: Store) -> None:
    rounds = [_history(700.0 + 10 * k) for k in range(31)]  # 700 .. 1000
    for col in rounds:
        store.add_collection(col)
    snap = store.snapshot(NOW, WINDOW, STALE)
    seen = [c for c in rounds if SINCE <= c.ts <= NOW]
    for v in snap.vms:  # reference: every VM sample of [since, now], oldest first
        mine = [r for c in seen for r in c.vms if r.vm == v.name]
        assert v.history == tuple(r.cpu for r in mine if r.cpu is not None)[-WINDOW:], v.name
        mem = [r.mem_used_mib for r in mine if r.mem_used_mib is not None]
        assert v.load.mem_mib == (mem[-1] if mem else 512.0), v.name
    by = {v.name: v for v in snap.vms}
    assert by["old"].history == (0.8, 0.85) and by["old"].stale  # read from before the span
    assert by["nomem"].load.mem_mib == 200.0  # the newest figure, from before the span
    assert by["new"].history == (0.25, 0.25) and by["new"].load.mem_mib == 512.0
    hosts = {h.name: h for h in snap.hosts}
    for h in hosts.values():
        mine = [r.cpu for c in seen for r in c.hosts if r.host == h.name and r.cpu is not None]
        assert h.cpu_history == tuple(mine)[-WINDOW:], h.name
    assert hosts["h2"].cpu_history == (0.7,) * 4 and hosts["h2"].stale  # last at 900
    assert hosts["h4"].stale and hosts["h4"].cpu_history == ()  # measured at 700 only
    assert hosts["h1"].empty_since is None and not hosts["h1"].stale
    assert hosts["h3"].empty_since == 880.0  # the newest VM sample on it
    assert hosts["h4"].empty_since == SINCE  # no VM on it in the whole look-back


def test_one_round_listing_a_vm_twice_or_a_host_twice_ends_as_in_turn(store: Store) -> None:
    store.add_collection(Collection(100.0, (_host(100.0, "h1"), _host(100.0, "h2")),
                                    (VMReading("a", "h1", 100.0, 1, 512.0, 0.1),
                                     VMReading("b", "h1", 100.0, 1, 512.0, 0.1))))
    # mid-migration a is listed on h1 and h2; b on h1 then h1; h1 answers then fails, h2
    # fails then answers; h9 is new and fails twice
    store.add_collection(Collection(110.0, (
        _host(110.0, "h1", cpu=0.2), _host(110.0, "h1", ok=False), _host(110.0, "h2", ok=False),
        _host(110.0, "h2", cpu=0.3), _host(110.0, "h9", ok=False), _host(110.0, "h9", ok=False)),
        (VMReading("a", "h1", 110.0, 2, 1024.0, 0.1), VMReading("a", "h2", 110.0, 2, 1024.0),
         VMReading("b", "h1", 110.0, 1, 512.0), VMReading("b", "h1", 110.0, 1, 512.0))))
    with store.engine.connect() as c:
        vms = {r.name: r for r in c.execute(select(t.vms))}
        hosts = {r.name: r for r in c.execute(select(t.hosts))}
    assert (vms["a"].host, vms["a"].vcpus, vms["a"].last_moved_at) == ("h2", 2, 110.0)
    assert (vms["b"].host, vms["b"].last_moved_at) == ("h1", None)
    assert not hosts["h1"].reachable and hosts["h1"].last_seen == 110.0
    assert hosts["h2"].reachable and hosts["h2"].last_seen == 110.0
    assert not hosts["h9"].reachable and hosts["h9"].last_seen == 110.0
    assert hosts["h9"].cores == 4 and hosts["h9"].error == "refused"


@pytest.mark.parametrize("max_rows", [1, 7, 100])
def test_retention_in_steps_ends_where_one_pass_ends(store: Store,
                                                       max_rows: int) -> None:
    h = 3600.0
    for k in range(12):  # two old hour buckets of raw samples, then a fresh round
        store.add_collection(Collection(h * 10 + 600 * k, (_host(h * 10 + 600 * k, "h1"),), (
            VMReading("a", "h1", h * 10 + 600 * k, 1, 512.0, 0.1 * (k % 6 + 1), 100.0 + k),
            VMReading("b", "h1", h * 10 + 600 * k, 1, 512.0, 0.2, None))))
    store.add_collection(Collection(h * 40, (_host(h * 40, "h1"),),
                                    (VMReading("a", "h1", h * 40, 1, 512.0, 0.9),)))
    steps, total = 0, 0
    while True:
        step = store.retention_step(h * 40, h * 24, h, h * 1000, max_rows)
        steps += 1
        total += step.downsampled
        if step.done:
            break
        assert steps < 100
    assert total == 12 * 3 and (steps > 1) == (max_rows < 36)
    with store.engine.connect() as c:
        rows = sorted((r.kind, r.name, r.ts, round(r.cpu, 6),
                       None if r.mem_mib is None else round(r.mem_mib, 6), r.resolution_s)
                      for r in c.execute(select(t.samples)))
    assert rows == [("host", "h1", 36000.0, 0.5, 1000.0, 3600.0),
                    ("host", "h1", 39600.0, 0.5, 1000.0, 3600.0),
                    ("host", "h1", 144000.0, 0.5, 1000.0, 0.0),
                    ("vm", "a", 36000.0, 0.35, 102.5, 3600.0),
                    ("vm", "a", 39600.0, 0.35, 108.5, 3600.0),
                    ("vm", "a", 144000.0, 0.9, None, 0.0),
                    ("vm", "b", 36000.0, 0.2, None, 3600.0),
                    ("vm", "b", 39600.0, 0.2, None, 3600.0)]


def test_a_retention_slice_reads_its_names_not_the_whole_bucket(tmp_path: Path) -> None:
    """SQLite plans without statistics: the rows of a slice (its mean, its DELETE) are read
    through (kind, name, ts)."""
    s = Store.open(f"sqlite:///{tmp_path}/plan.db", mode="create")
    try:
        with s.engine.connect() as c:
            sql = select(t.samples.c.cpu).where(*slice_of(0.0, 3600.0, "vm")).params(
                n=["a", "b"]).compile(dialect=c.dialect, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(r[3]) for r in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        s.close()
    assert "ix_samples_kind_name_ts" in plan and "ix_samples_resolution_ts" not in plan


def test_a_bucket_with_one_row_per_name_takes_few_slices(store: Store) -> None:
    """The first step after a day: only the day's first minute is past the cutoff, one row
    per name. Slices grow to the rows left, not 250 names each (1,200 names: 2 slices)."""
    from sqlalchemy import event, insert

    with store.engine.begin() as c:
        c.execute(insert(t.samples), [
            {"ts": 100.0, "kind": "vm", "name": f"v{k:04d}", "host": "h1", "cpu": 0.5,
             "mem_mib": None, "resolution_s": 0.0, "source": "libvirt"} for k in range(1200)])
    deletes: list[str] = []

    def seen(conn: object, cursor: object, sql: str, *args: object) -> None:
        if sql.lstrip().upper().startswith("DELETE FROM SAMPLES"):
            deletes.append(sql)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        step = store.retention_step(200.0 + 86400.0, 86400.0, 3600.0, 90 * 86400.0, 15_000)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert step.done and step.downsampled == 1200 and len(deletes) == 2
    with store.engine.connect() as c:
        assert c.execute(select(t.samples.c.resolution_s).distinct()).scalars().all() == [3600.0]
