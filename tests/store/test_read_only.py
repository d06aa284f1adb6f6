"""A read-only command writes nothing: on a SQLite store nobody has open, it reads the file
immutable (no -wal or -shm appears, and none is left behind); on one a daemon has open, it
reads what the daemon committed, through the daemon's WAL."""

from __future__ import annotations

from pathlib import Path

from ulm.model import Move, Plan
from ulm.store import Store


def _names(d: Path) -> list[str]:
    return sorted(f.name for f in d.iterdir())


def test_a_reader_of_a_closed_store_leaves_no_wal_or_shm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ulm.db"
    w = Store.open(url, mode="create")
    pid = w.save_plan(Plan("s", "p", 1.0, (Move("a", "h0", "h1", "hot"),)), "advise")
    w.close()
    assert _names(tmp_path) == ["ulm.db"]
    before = (tmp_path / "ulm.db").read_bytes()
    r = Store.open(url, mode="read")
    assert [p.id for p in r.plans()] == [pid]
    assert r.snapshot(2.0, 4, 10.0).n_hosts == 0
    assert _names(tmp_path) == ["ulm.db"]
    r.close()
    assert _names(tmp_path) == ["ulm.db"] and (tmp_path / "ulm.db").read_bytes() == before


def test_a_reader_beside_a_running_writer_sees_its_commits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ulm.db"
    w = Store.open(url, mode="create")
    first = w.save_plan(Plan("s", "p", 1.0, ()), "advise")  # the writer keeps it open: -wal
    assert "ulm.db-wal" in _names(tmp_path)
    r = Store.open(url, mode="read")
    assert [p.id for p in r.plans()] == [first]
    second = w.save_plan(Plan("s", "p", 2.0, ()), "advise")
    assert {p.id for p in r.plans()} == {first, second}  # not a frozen (immutable) view
    r.close()
    w.close()
