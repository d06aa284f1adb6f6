"""A read-only command beside a running daemon reads what the daemon committed, through the
daemon's WAL: never a frozen (immutable) view of the main file. (Reading a store nobody has
open still leaves -wal/-shm behind: an immutable open was tried and reverted, it made
`ulm status` beside a running daemon's store read stale rows.)"""

from __future__ import annotations

from pathlib import Path

from ulm.model import Plan
from ulm.store import Store


def _names(d: Path) -> list[str]:
    return sorted(f.name for f in d.iterdir())


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
