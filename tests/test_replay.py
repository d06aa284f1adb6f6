"""`ulm replay` on a store the real daemon filled (SimCluster driver), and the recorded export
read back by `ulm simulate --trace`."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.daemon.fakes import HOT_TOML, world
from ulm.cli import _register, app
from ulm.collect.base import Collection, HostReading, VMReading
from ulm.daemon import Mode
from ulm.policy import load_policy, resolve_policy
from ulm.replay.load import GapRule, Recording, load
from ulm.replay.run import replay_all
from ulm.sim.engine import SimResult
from ulm.sim.traces import load_trace
from ulm.store import Store

HOSTS = ("hA", "hB", "hC")
HOT = HOT_TOML  # the daemon tests' hot policy, as a file's text


def _cli(*args: str) -> Any:
    _register()
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def _config(tmp: Path, url: str) -> Path:
    cfg = tmp / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\n' + "".join(
        f'[[hosts]]\nname = "{h}"\nlibvirt_uri = "test:///{h}"\n' for h in HOSTS))
    return cfg


@pytest.fixture(scope="module")
def daemon_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """100 minutes of the daemon enforcing the hot policy: five VMs of one core each on hA's
    four cores (overloaded: the daemon moves two away), one half-busy VM on hB."""
    tmp = tmp_path_factory.mktemp("replay")
    placement = {f"v{i}": "hA" for i in range(5)} | {"w0": "hB"}
    w = world(tmp, placement, hosts=HOSTS, mode=Mode.enforce, interval=100.0, rounds=60,
              vm_cpu={**{f"v{i}": 1.0 for i in range(5)}, "w0": 0.5})
    w.rounds(60)
    w.daemon.release()  # the lock's heartbeat thread writes to the store: stopped here
    w.store.close()
    del w
    gc.collect()  # the heartbeat's own connection too, so nothing is left to checkpoint later
    with contextlib.closing(sqlite3.connect(tmp / "ulm.db")) as db:
        db.execute("pragma wal_checkpoint(truncate)")
    (tmp / "hot.toml").write_text(HOT)
    return _config(tmp, f"sqlite:///{tmp}/ulm.db"), tmp / "hot.toml"


def _replay(cfg: Path, *args: str) -> dict[str, Any]:
    out = _cli("replay", "--config", str(cfg), "--since", "-3h", "--format", "json", *args)
    assert out.exit_code == 0, out.output
    doc: dict[str, Any] = json.loads(out.output)
    return doc


def test_two_policies_differ_and_recorded_is_the_store(daemon_store: tuple[Path, Path]) -> None:
    cfg, hot = daemon_store
    doc = _replay(cfg, "--policy", str(hot), "--policy", "npa")
    by = {p["policy"]: p for p in doc["policies"]}
    assert set(by) == {"hot", "npa"} and doc["hosts"] == 3 and doc["vms"] == 6
    # the hot policy relieves hA as the daemon did; npa never migrates and stays overloaded
    assert by["hot"]["migrations"] >= 1 and by["npa"]["migrations"] == 0
    assert by["npa"]["overload_host_h"] > by["hot"]["overload_host_h"]
    assert by["npa"]["energy_kwh"] > by["hot"]["energy_kwh"]  # npa: every host at full power
    with sqlite3.connect(cfg.parent / "ulm.db") as db:
        done = db.execute("select count(*) from outcomes where kind = 'move' and status = "
                          "'done' and finished_at >= ? and finished_at < ?",
                          (doc["since"], doc["until"])).fetchone()[0]
    rec = doc["recorded"]
    assert done >= 1 and rec["migrations"] == done
    # the daemon's own policy, replayed, does what the daemon did: fidelity of the rebuild
    assert by["hot"]["migrations"] == done
    assert by["hot"]["energy_kwh"] == pytest.approx(rec["energy_kwh"], rel=0.05)
    assert rec["energy_basis"] == "model" and rec["energy_kwh"] > 0
    assert by["npa"]["diff"]["migrations"] == -done
    assert by["hot"]["diff"]["energy_kwh"] == pytest.approx(
        by["hot"]["energy_kwh"] - rec["energy_kwh"])
    assert doc["gaps"]["filled"] == 0 and doc["gaps"]["daemon_down"] == []
    table = _cli("replay", "--config", str(cfg), "--since", "-3h", "--policy", "npa")
    assert table.exit_code == 0, table.output
    assert "recorded" in table.output and "npa" in table.output and "gaps: 0 of" in \
        table.output


def test_replay_writes_nothing(daemon_store: tuple[Path, Path]) -> None:
    cfg, hot = daemon_store
    db = cfg.parent / "ulm.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    _replay(cfg, "--policy", str(hot), "--policy", "seed")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    wal = db.with_name("ulm.db-wal")  # SQLite may open one to read: it must hold no page
    assert not wal.exists() or wal.stat().st_size == 0


def test_gaps_are_counted_not_interpolated(daemon_store: tuple[Path, Path],
                                           tmp_path: Path) -> None:
    cfg, _ = daemon_store
    copy = tmp_path / "gappy.db"
    shutil.copy(cfg.parent / "ulm.db", copy)
    with sqlite3.connect(copy) as db:
        t0, t1 = db.execute("select min(ts), max(ts) from samples").fetchone()
        mid = t0 + (t1 - t0) / 2  # 20 minutes of nothing: the daemon was down
        db.execute("delete from samples where ts >= ? and ts < ?", (mid, mid + 1200))
    store = Store.open(f"sqlite:///{copy}", mode="read")
    try:
        held = load(store, t0 - 1, t1 + 1, GapRule.hold)
        zero = load(store, t0 - 1, t1 + 1, GapRule.zero)
    finally:
        store.close()
    g = held.gaps
    assert len(g.daemon_down) == 1 and g.daemon_down[0][1] - g.daemon_down[0][0] >= 900
    assert g.filled == zero.gaps.filled > 0 and g.absent == 0
    gap = ~held.measured
    assert gap.any() and (zero.trace.cpu[gap] == 0).all()
    assert (held.trace.cpu[gap] > 0).all()  # the busy VMs' last bucket, held
    assert (held.trace.cpu[~gap] == zero.trace.cpu[~gap]).all()  # measured cells as measured


def test_bad_input_gets_one_line(daemon_store: tuple[Path, Path]) -> None:
    cfg, _ = daemon_store
    for args, needle in ((("--since", "yesterday"), "--since 'yesterday'"),
                         (("--policy", "no-such"), "unknown policy 'no-such'"),
                         (("--since", "-1h", "--until", "-2h"), "not before --until")):
        out = _cli("replay", "--config", str(cfg), *args)
        assert out.exit_code == 2 and needle in out.output, out.output
        assert "Traceback" not in out.output


def test_export_is_the_replay_trace_and_simulates(tmp_path: Path) -> None:
    """A recorded day exported (`ulm export samples`) holds the same 5-minute buckets the
    replay builds from the store, and `ulm simulate --trace` runs it."""
    url = f"sqlite:///{tmp_path}/ulm.db"
    cfg = _config(tmp_path, url)
    store = Store.open(url, mode="create")
    start = (time.time() // 300) * 300 - 2 * 86400
    for k in range(288):
        ts = start + k * 300 + 10
        store.add_collection(Collection(ts, (HostReading("hA", ts, True, "", 8, 32768.0, 0.2,
                                                         1000.0, None, "libvirt"),),
                                        (VMReading("web1", "hA", ts, 2, 4096.0,
                                                   1.0 + (k % 7) / 10, 2048.0 + k),
                                         VMReading("web2", "hA", ts, 4, 8192.0, 0.4, 2048.0))))
    rec = load(store, start, start + 86400, GapRule.hold)
    store.close()
    out = tmp_path / "day.csv.gz"
    r = _cli("export", "samples", "--config", str(cfg), "--since", f"{start:.0f}",
             "--output", str(out))
    assert r.exit_code == 0, r.output
    day = load_trace(out)
    assert day.vm_names == rec.trace.vm_names and day.samples == rec.buckets == 288
    assert np.allclose(day.cpu, rec.trace.cpu, atol=5e-5)  # the file keeps 0.01 %
    assert day.mem is not None and rec.trace.mem is not None
    assert np.allclose(day.mem, rec.trace.mem, atol=5e-5)
    sim = _cli("simulate", "--trace", str(out), "--policy", "seed", "--policy", "npa",
               "--hosts", "4", "--format", "json")
    assert sim.exit_code == 0, sim.output
    runs = [json.loads(line) for line in sim.output.strip().splitlines()]
    assert [r["policy"] for r in runs] == ["seed", "npa"] and runs[0]["vms"] == 2


def test_bookings_and_power_states_are_replayed(daemon_store: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    """hC was off before the window began (a power event), hB was booked for maintenance in
    the middle of it: the replay starts hC off and drains hB while the booking lasts."""
    cfg, hot = daemon_store
    copy = tmp_path / "booked.db"
    shutil.copy(cfg.parent / "ulm.db", copy)

    def run() -> tuple[Recording, SimResult]:
        store = Store.open(f"sqlite:///{copy}", mode="read")
        try:
            rec = load(store, t0 - 1, t1 + 1, GapRule.hold)
        finally:
            store.close()
        return rec, replay_all(rec, [load_policy(hot)], boot_s=120.0)[0]

    with contextlib.closing(sqlite3.connect(copy)) as db:
        t0, t1 = db.execute("select min(ts), max(ts) from samples").fetchone()
    plain, before = run()
    with contextlib.closing(sqlite3.connect(copy)) as db, db:
        db.execute("insert into maintenance (host, start, \"end\", power_off, reason, status, "
                   "detail, created_at, return_home) values ('hB', ?, ?, 0, 'disk', 'done', "
                   "'', ?, 0)", (t0 + 1800, t0 + 3600, t0))
        db.execute("insert into power_events (ts, host, action, driver, result, detail) "
                   "values (?, 'hC', 'off', 'ipmi', 'done', '')", (t0 - 100,))
    rec, after = run()
    assert not plain.off_at_start.any() and before.extra["host_hours_off"] == 0
    assert rec.off_at_start.tolist() == [False, False, True]
    assert rec.maintenance == ((1, t0 + 1800, t0 + 3600),)
    assert after.extra["host_hours_off"] > 0  # hC starts off ...
    assert after.extra["wake_ups"] >= 1  # ... and is woken to take hB's VMs
    assert after.migrations >= before.migrations + 3  # hB's three VMs drained


def test_jobs_give_the_same_results(daemon_store: tuple[Path, Path]) -> None:
    cfg, hot = daemon_store
    store = Store.open(f"sqlite:///{cfg.parent / 'ulm.db'}", mode="read")
    try:
        rec = load(store, time.time() - 3 * 3600, time.time(), GapRule.hold)
    finally:
        store.close()
    pols = [load_policy(hot), resolve_policy("power-save")]

    def figures(runs: list[SimResult]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.to_dict().items() if k != "wall_s"} for r in runs]

    one = figures(replay_all(rec, pols, 120.0, jobs=1))
    assert figures(replay_all(rec, pols, 120.0, jobs=2)) == one
    assert [r["policy"] for r in one] == ["hot", "power-save"]
