"""Read-only commands leave a SQLite store's directory as they found it (issue 12's "write
nothing"): no -wal/-shm appears beside a store nobody has open, and with a writer holding the
store open they see its committed rows (in its -wal, not yet in the main file) -- not stale
ones -- and change neither the database nor the -wal. Real `ulm` processes on a real store."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.store.test_store_cli import READERS, config, ulm
from ulm.model import Move, Plan
from ulm.store import Store

Seen = dict[str, tuple[int, int, str]]  # name -> (mtime ns, size, sha256)


def _look(where: Path) -> Seen:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size,
                     hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(where.iterdir())}


def _read_all(cfg: Path, out: Path) -> dict[tuple[str, ...], str]:
    said = {}
    for args in (*READERS, ("export", "samples", "--since", "-48h", "-o", str(out))):
        r = ulm(cfg, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        said[args] = r.stdout
        out.unlink(missing_ok=True)  # the export's file is elsewhere; a second run needs none
    return said


def _plan(store: Store, vm: str) -> str:
    return store.save_plan(Plan("s", "p", 1_800_000_000.0, (Move(vm, "t1", "t2", "test"),)),
                           "advise")


def test_no_daemon_no_side_files(tmp_path: Path) -> None:
    cfg = config(tmp_path, f"sqlite:///{tmp_path}/var/ulm.db")
    assert ulm(cfg, "run", "--once", "--mode", "observe").returncode == 0
    store = Store.open(f"sqlite:///{tmp_path}/var/ulm.db", mode="write")
    pid = _plan(store, "vm-a")
    store.close()  # the last connection: checkpointed, its -wal and -shm gone
    before = _look(tmp_path / "var")
    assert list(before) == ["ulm.db"]
    said = _read_all(cfg, tmp_path / "out.csv.gz")
    assert _look(tmp_path / "var") == before  # the listing, every byte, every mtime
    assert pid in said[("explain",)]  # the newest plan, read


def test_a_writer_holds_it_open_readers_see_its_rows_and_change_nothing_of_it(
        tmp_path: Path) -> None:
    cfg = config(tmp_path, f"sqlite:///{tmp_path}/var/ulm.db")
    assert ulm(cfg, "run", "--once", "--mode", "observe").returncode == 0
    writer = Store.open(f"sqlite:///{tmp_path}/var/ulm.db", mode="write")
    try:
        pid = _plan(writer, "vm-b")  # committed, in the -wal only (the writer keeps it open)
        before = _look(tmp_path / "var")
        assert set(before) == {"ulm.db", "ulm.db-wal", "ulm.db-shm"}
        said = _read_all(cfg, tmp_path / "out.csv.gz")
        after = _look(tmp_path / "var")
        assert set(after) == set(before)  # nothing created
        assert after["ulm.db"] == before["ulm.db"] and after["ulm.db-wal"] == before["ulm.db-wal"]
        # the -shm index keeps its size; SQLite sets its read marks in it (docs: store/readuri.py)
        assert after["ulm.db-shm"][1] == before["ulm.db-shm"][1]
        assert pid in said[("explain",)] and "vm-b" in said[("explain",)]  # not stale rows
    finally:
        writer.close()
