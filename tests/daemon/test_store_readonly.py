"""A store made read-only under a running daemon (`chattr +i`, as a read-only remount does:
root ignores permission bits) degrades it in one line and it resumes when writable (issue 10,
"store failures kill the daemon"; the full-disk case is in test_processes.py)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.procs import Daemon, configure, eventually
from ulm.store import Store


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[list[Path]]:
    """What the test made immutable, made mutable again whatever happens."""
    if os.geteuid() != 0:
        pytest.fail("the read-only store test uses chattr: it needs root")
    paths: list[Path] = []
    yield paths
    subprocess.run(["chattr", "-i", *map(str, paths)], check=False, capture_output=True)


def test_a_read_only_store_degrades_the_daemon_and_it_resumes(tmp_path: Path,
                                                             frozen: list[Path]) -> None:
    where = tmp_path / "store"
    where.mkdir()
    cfg = configure(tmp_path, where)
    d = Daemon(cfg, mode="enforce")
    try:
        assert eventually(lambda: (where / "ulm.db").exists() and bool(d.lines("leading")))
        store = Store.open(f"sqlite:///{where}/ulm.db", mode="read")
        assert store.lock_holder() is not None
        store.close()
        # not the -shm file: SQLite maps it, and a write to an immutable mapping is SIGBUS
        frozen += [p for p in (where / "ulm.db", where / "ulm.db-wal") if p.exists()]
        frozen.append(where)
        out = subprocess.run(["chattr", "+i", *map(str, frozen)], capture_output=True, text=True)
        if out.returncode:
            pytest.skip(f"this filesystem has no immutable flag: {out.stderr.strip()}")
        line = d.wait_for("monitoring in memory only")
        assert " ERROR " in line and "acting on nothing until it takes writes again" in line
        time.sleep(3)  # three more rounds, one line, still running
        assert d.proc.poll() is None
        assert len(d.lines("monitoring in memory only")) == 1
        subprocess.run(["chattr", "-i", *map(str, frozen)], check=True)
        d.wait_for("takes writes again: acting again")
        assert d.stop() == 0
    finally:
        d.kill()
    assert "Traceback" not in d.log(), d.log()
