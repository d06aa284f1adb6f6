"""The store on real SQLite and real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.executor import Outcome, Status
from ulm.model import HostState, Move, Plan, PowerOff
from ulm.store import Store
from ulm.store.opening import head
from ulm.store.schema import metadata


def collection(ts: float, cpu: dict[str, float], where: dict[str, str],
               silent: tuple[str, ...] = ()) -> Collection:
    hosts = tuple(HostReading(h, ts, h not in silent, "refused" if h in silent else "", 2, 4096.0,
                              None if h in silent else 0.5, 1000.0, None, "libvirt")
                  for h in ("h1", "h2"))
    vms = tuple(VMReading(vm, host, ts, 1, 512.0, cpu.get(vm), 300.0)
                for vm, host in where.items())
    return Collection(ts, hosts, vms)


def test_schema_is_at_head_and_matches_the_code(store: Store) -> None:
    with store.engine.connect() as c:
        ctx = MigrationContext.configure(c)
        assert ctx.get_current_revision() == head()
        assert compare_metadata(ctx, metadata) == []
    again = Store.open(store.engine.url.render_as_string(hide_password=False), mode="create")
    with again.engine.connect() as c:  # a second open for create is a no-op
        assert MigrationContext.configure(c).get_current_revision() == head()
    again.close()


def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    s = Store.open(f"sqlite:///{tmp_path}/w.db", mode="create")
    with s.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


def test_collections_make_a_snapshot_with_history_and_staleness(store: Store) -> None:
    for k in range(5):
        store.add_collection(collection(100.0 + 10 * k, {"a": 0.1 * (k + 1), "b": 0.5},
                                        {"a": "h1", "b": "h2"}))
    # b stops reporting (its host still answers, b's counter gave no figure)
    store.add_collection(collection(150.0, {"a": 0.6}, {"a": "h1", "b": "h2"}))
    snap = store.snapshot(now=150.0, window=4, stale_s=25.0)
    assert snap.host_names == ("h1", "h2")
    assert snap.host_state == (HostState.ON, HostState.ON)
    a, b = snap.vms
    assert a.history == pytest.approx((0.3, 0.4, 0.5, 0.6)) and a.load.cpu == pytest.approx(0.6)
    assert not a.stale
    assert b.history == (0.5, 0.5, 0.5, 0.5) and b.stale is False  # its last figure is 10 s old
    late = store.snapshot(now=180.0, window=4, stale_s=25.0)
    assert late.vms[1].stale and late.vms[1].load.cpu == 0.5  # the last known, not a guess
    assert snap.hosts[0].cpu_history == (0.5, 0.5, 0.5, 0.5)
    assert snap.hosts[0].capacity.cpu == 2.0 and snap.hosts[0].capacity.mem_mib == 4096.0


def test_a_silent_host_is_unknown_and_a_moved_vm_starts_its_cooldown(store: Store) -> None:
    store.add_collection(collection(100.0, {"a": 0.2}, {"a": "h1"}))
    store.add_collection(collection(110.0, {"a": 0.2}, {"a": "h2"}, silent=("h1",)))
    snap = store.snapshot(now=140.0, window=4, stale_s=25.0)
    assert snap.host_state[snap.host_index["h1"]] is HostState.UNKNOWN
    assert snap.vms[0].host == "h2" and snap.vms[0].last_moved_at == 110.0
    assert snap.vms[0].history == (0.2, 0.2)  # keyed by VM: its history survives the move


def test_plans_outcomes_and_the_journal(store: Store) -> None:
    move = Move("a", "h1", "h2", "overload", 512.0)
    plan = Plan("snap1", "pol1", 1000.0, (move, PowerOff("h1", "empty")))
    pid = store.save_plan(plan, "advise")
    assert store.plan(pid).status == "proposed" and store.plan(pid).plan["actions"][0]["vm"] == "a"
    # the same advice again (in another order, with fresher reasons): the same plan, kept
    again = (PowerOff("h1", "empty now"), Move("a", "h1", "h2", "overload 91%", 520.0))
    assert store.save_plan(Plan("snap2", "pol1", 1060.0, again), "advise") == pid
    kept = store.plan(pid)
    assert kept.status == "proposed" and kept.created_at == 1000.0
    assert kept.plan["seen_at"] == 1060.0 and kept.plan["snapshot_id"] == "snap2"
    assert [(a["kind"], a.get("reason")) for a in kept.plan["actions"]] == [
        ("move", "overload 91%"), ("power_off", "empty now")]  # its order, the new figures
    # another advice (a different destination) supersedes it
    newer = store.save_plan(Plan("snap3", "pol1", 1120.0, (Move("a", "h1", "h3", "o"),)),
                            "advise")
    assert newer != pid and store.plan(pid).status == "superseded"
    assert [p.id for p in store.plans()] == [newer, pid]
    entry = store.intent(newer, 1, move)
    store.update(entry, "started", "job-1")
    open_ = store.open_entries()
    assert [(e.id, e.action, e.state) for e in open_] == [(entry, move, "started")]
    store.update(entry, "done")
    assert store.open_entries() == []
    store.record_outcome(newer, 1, Outcome(move, Status.DONE, "", 1001.0, 1003.0))
    store.record_outcome(newer, 2, Outcome(PowerOff("h1", "x"), Status.SKIPPED, "still runs a",
                                           1003.0, 1003.0))
    rows = store.outcomes(newer)
    assert [(r["kind"], r["status"]) for r in rows] == [("move", "done"), ("power_off",
                                                                          "skipped")]
    assert store.power_events()[0]["result"] == "skipped"


def test_retention_downsamples_and_expires(store: Store) -> None:
    for k in range(6):  # 6 raw samples in one hour bucket, cpu 0.1 .. 0.6
        store.add_collection(collection(3600.0 * 10 + 60 * k, {"a": 0.1 * (k + 1)},
                                        {"a": "h1"}))
    store.add_collection(collection(3600.0 * 40, {"a": 0.9}, {"a": "h1"}))
    raw, gone = store.retention(now=3600.0 * 40, raw_keep_s=3600.0 * 24, bucket_s=3600.0,
                                keep_s=3600.0 * 1000)
    assert raw == 6 * 3 and gone == 0  # 6 rounds x (2 hosts + 1 VM)
    with store.engine.connect() as c:
        rows = c.exec_driver_sql(
            "SELECT ts, cpu, resolution_s FROM samples WHERE kind = 'vm' ORDER BY ts").all()
    assert [(r[0], round(r[1], 6), r[2]) for r in rows] == [(36000.0, 0.35, 3600.0),
                                                            (144000.0, 0.9, 0.0)]
    _, gone = store.retention(now=3600.0 * 40, raw_keep_s=3600.0 * 24, keep_s=3600.0 * 2)
    assert gone == 3


def test_power_readings_age_like_samples(store: Store) -> None:
    for k in range(4):  # four readings in one old hour: 100, 110, 120, 130 W
        store.add_power_readings(3600.0 * 10 + 60 * k, {"h1": 100.0 + 10 * k})
    store.add_power_readings(3600.0 * 40, {"h1": 200.0, "h2": 80.0})
    store.retention(now=3600.0 * 40, raw_keep_s=3600.0 * 24, bucket_s=3600.0,
                    keep_s=3600.0 * 1000)
    assert store.power_readings() == {"h1": [(36000.0, 115.0, 3600.0), (144000.0, 200.0, 0.0)],
                                      "h2": [(144000.0, 80.0, 0.0)]}
    store.retention(now=3600.0 * 40, raw_keep_s=3600.0 * 24, bucket_s=3600.0,
                    keep_s=3600.0 * 2)  # the bucket is expired, the fresh readings stay
    assert store.power_readings() == {"h1": [(144000.0, 200.0, 0.0)],
                                      "h2": [(144000.0, 80.0, 0.0)]}
    assert store.power_readings(since=3600.0 * 41) == {}


def test_maintenance_bookings(store: Store) -> None:
    b = store.book("h1", 1000.0, 2000.0, True, "firmware")
    store.book("h2", 3000.0, 4000.0, False, "")
    assert [x.host for x in store.bookings()] == ["h1", "h2"]
    store.set_booking(b, "cancelled", "by admin")
    assert [x.host for x in store.bookings(active_only=True)] == ["h2"]
    from ulm.errors import UlmError
    with pytest.raises(UlmError, match="no maintenance booking #999"):
        store.set_booking(999, "done")


def test_the_daemon_lock(store: Store) -> None:
    assert store.acquire_lock("one", ttl_s=60)
    assert not store.acquire_lock("two", ttl_s=60)
    assert store.acquire_lock("one", ttl_s=60)  # re-entrant for its owner
    assert store.refresh_lock("one", ttl_s=-1)  # expire it: its holder stopped refreshing
    assert store.acquire_lock("two", ttl_s=60)
    assert not store.refresh_lock("one", ttl_s=60)
    store.release_lock("two")
    assert store.lock_holder() is None


def test_lock_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/lock.db"
    Store.open(url, mode="create").acquire_lock("first", ttl_s=60)
    code = (f"from ulm.store import Store; "
            f"print(Store.open({url!r}, mode='write').acquire_lock('second', ttl_s=60))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_bad_url_is_a_clear_error() -> None:
    from ulm.errors import UlmError
    with pytest.raises(UlmError, match="cannot use store 'nosuchdb://x'"):
        Store.open("nosuchdb://x", mode="read")


def test_power_bookkeeping_for_the_power_off_rules(store: Store) -> None:
    store.add_collection(collection(100.0, {"a": 0.2}, {"a": "h1"}))
    store.add_collection(collection(110.0, {"a": 0.2}, {"a": "h2"}))
    store.record_outcome(store.save_plan(Plan("s", "p", 120.0, ()), "enforce"), 1,
                         Outcome(PowerOff("h1", "x"), Status.DONE, "", 120.0, 121.0))
    from ulm.model import PowerOn
    store.record_outcome(store.save_plan(Plan("s", "p", 130.0, ()), "enforce"), 1,
                         Outcome(PowerOn("h1", "x"), Status.DONE, "", 130.0, 135.0))
    store.add_collection(collection(140.0, {"a": 0.2}, {"a": "h2"}))
    snap = store.snapshot(now=150.0, window=4, stale_s=25.0)
    h1, h2 = snap.hosts
    assert h1.empty_since == 100.0 and h2.empty_since is None
    assert h1.on_since == 135.0 and h1.power_cycles_24h == 1 and h2.power_cycles_24h == 0
