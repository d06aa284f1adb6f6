"""Scheduled downtime through the daemon's own round, on SimCluster with a simulated clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import Config, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits
from ulm.policy import resolve_policy
from ulm.store import Store

HOSTS = ("h1", "h2", "h3")
T0 = float(int(time.time()) - 60)  # near the real clock: the CLI books in real time


def setup(tmp: Path, placement: dict[str, str], mem: dict[str, float],
          host_mem: float = 4096.0, t0: float = T0) -> tuple[Daemon, SimCluster, Store]:
    clock = SimClock(t0)
    cluster = SimCluster(clock, dict(placement), dict(mem), boot_s=90.0)
    source = SimSource(cluster, {h: 4 for h in HOSTS}, {h: host_mem for h in HOSTS},
                       vm_cpu={v: 0.5 for v in placement})
    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp}/ulm.db"),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"qemu+tcp://{h}/system")
                             for h in HOSTS))
    store = Store.open(cfg.store.url, mode="create")
    executor = Executor(cluster, clock, store, Limits(poll_s=1.0, power_timeout_s=300.0),
                        power={h: cluster.power(h) for h in HOSTS})
    daemon = Daemon(cfg, resolve_policy("seed"), store, [source], executor, clock,
                    Mode.enforce)
    daemon.start()
    return daemon, cluster, store


def rounds(d: Daemon, n: int) -> None:
    for _ in range(n):
        d.run_round()
        d.clock.sleep(d.cfg.collect.interval_s)


def status(store: Store, booking: int) -> str:
    return next(b.status for b in store.bookings() if b.id == booking)


def test_drain_power_off_and_return(tmp_path: Path) -> None:
    d, cluster, store = setup(tmp_path, {"a": "h1", "b": "h1", "c": "h2"},
                              {"a": 1024.0, "b": 1024.0, "c": 1024.0})
    rounds(d, 1)
    booking = store.book("h1", T0 + 3600, T0 + 7200, True, "firmware")
    rounds(d, 1)
    assert status(store, booking) == "booked"  # lead time ~ 2 x 20 s + 300 s: not yet
    d.clock.advance_to(T0 + 3600 - 200)
    rounds(d, 2)
    assert cluster.list_vms("h1") == []  # drained live, before the window
    assert set(cluster.placement.values()) <= {"h2", "h3"}
    rounds(d, 1)
    assert status(store, booking) == "down" and not cluster.is_on("h1")
    assert cluster.migrations == 2
    d.clock.advance_to(T0 + 7200)
    rounds(d, 3)
    assert cluster.is_on("h1")
    assert status(store, booking) == "done"
    events = [(e["host"], e["action"], e["result"]) for e in store.power_events()]
    assert events == [("h1", "off", "done"), ("h1", "on", "done")]


def test_a_drain_that_does_not_fit_is_reported_and_nothing_is_powered_off(
        tmp_path: Path) -> None:
    d, cluster, store = setup(tmp_path, {"a": "h1", "b": "h2", "c": "h3"},
                              {"a": 3000.0, "b": 3000.0, "c": 3000.0})
    rounds(d, 1)
    booking = store.book("h1", T0 + 600, T0 + 7200, True, "")
    d.clock.advance_to(T0 + 600)
    rounds(d, 3)
    b = next(x for x in store.bookings() if x.id == booking)
    assert b.status == "blocked"
    assert "does not fit" in b.detail and "nothing will be powered off" in b.detail
    assert cluster.is_on("h1") and cluster.list_vms("h1") == ["a"]
    assert store.power_events() == []


def test_a_pinned_vm_blocks_the_power_off(tmp_path: Path) -> None:
    d, cluster, store = setup(tmp_path, {"a": "h1", "db": "h1"}, {"a": 512.0, "db": 512.0})
    d.cfg = d.cfg.model_copy(update={"manage": ("a",)})  # ULM may not touch db
    rounds(d, 1)
    booking = store.book("h1", T0 + 60, T0 + 7200, True, "")
    rounds(d, 3)
    b = next(x for x in store.bookings() if x.id == booking)
    assert b.status == "blocked" and "db" in b.detail
    assert cluster.is_on("h1") and sorted(cluster.list_vms("h1")) == ["a", "db"]


def test_booking_says_at_once_whether_the_drain_fits(tmp_path: Path) -> None:
    from tests.test_policy import run_ulm
    # The CLI books on the wall clock, so the samples start just before this test. T0 is read
    # at import, which can be most of a slow run ago: past the CLI's "gone" horizon, h1 is empty.
    d, _, _ = setup(tmp_path, {"a": "h1", "b": "h2", "c": "h3"},
                    {"a": 3000.0, "b": 3000.0, "c": 3000.0}, t0=float(int(time.time()) - 60))
    rounds(d, 1)
    cfg = tmp_path / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/ulm.db"\n' + "".join(
        f'[[hosts]]\nname = "{h}"\nlibvirt_uri = "qemu+tcp://{h}/system"\n' for h in HOSTS))
    out = run_ulm("maintenance", "add", "-c", str(cfg), "h1", "--start", "+1h", "--end",
                  "+3h", "--power-off")
    assert out.returncode == 0, out.stderr
    assert "the drain of h1 does not fit" in out.stdout and "GiB short" in out.stdout
    listed = run_ulm("maintenance", "list", "-c", str(cfg), "--format", "json")
    import json
    (booking,) = json.loads(listed.stdout)
    assert booking["status"] == "blocked" and booking["power_off"] is True
    bad = run_ulm("maintenance", "add", "-c", str(cfg), "h9", "--start", "now", "--end", "+1h")
    assert bad.returncode == 2 and "unknown host 'h9'" in bad.stderr
    later = run_ulm("maintenance", "add", "-c", str(cfg), "h1", "--start", "soon", "--end",
                    "+1h")
    assert later.returncode == 2 and "--start 'soon': cannot read it as a time" in later.stderr


def test_energy_report_counts_the_downtime(tmp_path: Path) -> None:
    import json

    from tests.test_policy import run_ulm
    t0 = T0 - 7200  # the report ends now at the latest: the whole story is in the past
    d, cluster, store = setup(tmp_path, {"a": "h1"}, {"a": 1024.0}, t0=t0)
    rounds(d, 1)
    store.book("h1", t0 + 600, t0 + 4200, True, "")
    d.clock.advance_to(t0 + 600)
    rounds(d, 3)
    assert not cluster.is_on("h1")
    d.clock.advance_to(t0 + 4200)
    rounds(d, 3)
    assert cluster.is_on("h1")
    cfg = tmp_path / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/ulm.db"\n'
                   '[power_models.flat]\nidle_w = 100\nmax_w = 200\n' + "".join(
                       f'[[hosts]]\nname = "{h}"\nlibvirt_uri = "qemu+tcp://{h}/system"\n'
                       f'power_curve = "flat"\n' for h in HOSTS))
    out = run_ulm("report", "energy", "-c", str(cfg), "--since", str(t0), "--until",
                  str(t0 + 4800), "--format", "json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    h1 = next(h for h in report["hosts"] if h["host"] == "h1")
    assert h1["power_cycles"] == 1 and 0.9 < h1["hours_off"] < 1.05
    assert report["saved_kwh"] == pytest.approx(h1["hours_off"] * 0.1, rel=0.05)  # idle 100 W


def test_the_daemon_downsamples_old_samples(tmp_path: Path) -> None:
    from ulm.config import CollectConfig
    d, _, store = setup(tmp_path, {"a": "h1"}, {"a": 512.0})
    d.cfg = d.cfg.model_copy(update={"collect": CollectConfig(
        interval_s=10, raw_keep_s=60, bucket_s=30, keep_s=3600)})
    for _ in range(12):  # 120 s of samples; retention runs every 30 s, between rounds
        d.run_round()
        d.between_rounds(d.clock.now() + 10)
        d.clock.sleep(10)
    with store.engine.connect() as c:
        rows = c.exec_driver_sql("SELECT resolution_s, max(ts) FROM samples WHERE kind = 'vm' "
                                 "GROUP BY resolution_s ORDER BY resolution_s").all()
    assert [r[0] for r in rows] == [0.0, 30.0]  # recent raw, older averaged
    assert rows[1][1] < rows[0][1] - 30


def test_a_host_that_does_not_wake_is_reported_and_another_is_woken(tmp_path: Path) -> None:
    from ulm.policy import parse_policy
    d, cluster, store = setup(tmp_path, {"a": "h1", "b": "h1"}, {"a": 512.0, "b": 512.0})
    d.policy = parse_policy("[overload]\nthreshold = 0.2\nsustain = 1\nwindow = 1\n")
    for h in ("h2", "h3"):  # both other hosts sleep; h2's BMC is dead
        cluster.powered[h] = False
        store.add_power_event(T0 - 10, h, "off", "sim", "done", "")
    cluster.dead_bmc.add("h2")
    d.sources[0].vm_cpu.update({"a": 0.8, "b": 0.8})  # type: ignore[attr-defined]  # h1 at 40 % > 20 %: needs room
    rounds(d, 3)
    tries = [(e["host"], e["action"], e["result"]) for e in store.power_events()
             if e["action"] == "on"]
    assert tries[0] == ("h2", "on", "failed")  # the biggest first; its BMC does not answer
    assert ("h3", "on", "done") in tries  # then another host is used
    assert cluster.is_on("h3") and not cluster.is_on("h2")
    assert tries.count(("h2", "on", "failed")) == 1  # not retried again and again


def test_return_home_brings_the_vms_back(tmp_path: Path) -> None:
    d, cluster, store = setup(tmp_path, {"a": "h1", "b": "h1", "c": "h2"},
                              {"a": 1024.0, "b": 1024.0, "c": 1024.0})
    rounds(d, 1)
    booking = store.book("h1", T0 + 60, T0 + 3600, True, "", return_home=True)
    rounds(d, 3)
    assert not cluster.is_on("h1") and set(cluster.placement.values()) <= {"h2", "h3"}
    assert sorted(next(b for b in store.bookings() if b.id == booking).home_vms) == ["a", "b"]
    d.clock.advance_to(T0 + 3600)
    rounds(d, 3)
    b = next(x for x in store.bookings() if x.id == booking)
    assert b.status == "done" and "2 of 2 VM(s) returned home" in b.detail, b.detail
    assert cluster.placement == {"a": "h1", "b": "h1", "c": "h2"}


def test_an_old_store_is_upgraded_in_place(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine

    from ulm.store.store import MIGRATIONS
    url = f"sqlite:///{tmp_path}/old.db"
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with create_engine(url).begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, "0001")
        c.exec_driver_sql('INSERT INTO maintenance (host, start, "end", power_off, reason, '
                          "status, detail, created_at) VALUES ('h1', 1, 2, 0, 'old', 'booked', "
                          "'', 0)")
    (old,) = Store.open(url, mode="create").bookings()  # upgraded to head on open
    assert old.reason == "old" and old.return_home is False and old.home_vms == ()


def test_a_drained_host_is_not_powered_off_while_a_move_off_it_is_unfinished(
        tmp_path: Path) -> None:
    """In the background a move's VM can show on its destination a round before its outcome
    is closed: the booking waits for it instead of trying (and failing) the power-off."""
    from ulm.model import Move

    d, cluster, store = setup(tmp_path, {"a": "h1", "c": "h2"}, {"a": 1024.0, "c": 1024.0})
    rounds(d, 1)
    booking = store.book("h1", T0 + 60, T0 + 7200, True, "")
    rounds(d, 1)
    assert cluster.list_vms("h1") == [] and status(store, booking) == "draining"
    late = Move("a", "h1", cluster.placement["a"], "t")  # as if its outcome were not closed
    d.executor.holds.take("bg", (late,))
    rounds(d, 2)
    assert cluster.is_on("h1") and status(store, booking) == "draining"
    assert store.power_events() == [] and "power action failed" not in next(
        b.detail for b in store.bookings() if b.id == booking)
    d.executor.holds.release_plan("bg")
    rounds(d, 1)
    assert status(store, booking) == "down" and not cluster.is_on("h1")
