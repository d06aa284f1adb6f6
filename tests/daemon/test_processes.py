"""The daemon as a real process: a second one, SIGHUP, a store that fills up, signals
through a wrapper."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.procs import POLICY, ULM, Daemon, configure, eventually
from ulm.store import Store


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def test_a_second_daemon_names_the_first_ones_host_and_pid(tmp_path: Path,
                                                           daemons: list[Daemon]) -> None:
    cfg = configure(tmp_path)
    first = Daemon(cfg)
    daemons.append(first)
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    assert eventually(lambda: store.lock_holder() is not None)
    second = subprocess.run([ULM, "run", "-c", str(cfg), "--once"], capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"error: another ULM daemon holds the lock on this store (pid {first.pid} on "
        f"{socket.gethostname()}); refusing to start a second one (`ulm run --standby` waits "
        "to take over)")
    assert first.stop() == 0 and store.lock_holder() is None


def test_sighup_reloads_the_policy_and_refuses_a_broken_one(tmp_path: Path,
                                                           daemons: list[Daemon]) -> None:
    cfg = configure(tmp_path)
    d = Daemon(cfg, mode="advise")
    daemons.append(d)
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    assert eventually(lambda: store.lock_holder() is not None)
    (tmp_path / "policy.toml").write_text(POLICY.format(name="second", threshold=0.9))
    d.proc.send_signal(signal.SIGHUP)
    line = d.wait_for("SIGHUP: policy second")
    assert " INFO " in line and f"reloaded from {tmp_path}/policy.toml; was first" in line
    (tmp_path / "policy.toml").write_text("[overload]\nthreshold = 'hot'\n")
    d.proc.send_signal(signal.SIGHUP)
    line = d.wait_for("SIGHUP: policy refused")
    assert " ERROR " in line and "keeping second" in line
    assert "policy.toml" in line and "overload.threshold" in line  # file and key, one line
    time.sleep(2.5)  # rounds go on with the policy in force
    assert d.proc.poll() is None
    assert len(d.lines("SIGHUP: policy refused")) == 1
    assert d.stop() == 0 and store.lock_holder() is None
    assert "Traceback" not in d.log()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: filled up, the store's writes fail as on a full disk."""
    if os.geteuid() != 0:
        pytest.fail("the store-failure test mounts a tmpfs: it needs root")
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def test_a_full_disk_degrades_the_daemon_and_it_resumes(tmp_path: Path, tiny_disk: Path,
                                                        daemons: list[Daemon]) -> None:
    cfg = configure(tmp_path, tiny_disk)
    first = Daemon(cfg, name="first")
    daemons.append(first)
    store = Store.open(f"sqlite:///{tiny_disk}/ulm.db", mode="create")
    assert eventually(lambda: store.lock_holder() is not None)
    filler = fill(tiny_disk)
    line = first.wait_for("monitoring in memory only")
    assert " ERROR " in line and "database or disk is full" in line
    time.sleep(3)  # three more rounds, one line
    assert first.proc.poll() is None
    assert len(first.lines("monitoring in memory only")) == 1
    # restarting on the full store: no traceback either, it starts degraded
    assert first.stop() == 0
    second = Daemon(cfg, name="second")
    daemons.append(second)
    assert " ERROR " in second.wait_for("monitoring in memory only")
    time.sleep(2)
    assert second.proc.poll() is None
    filler.unlink()
    second.wait_for("takes writes again: acting again")
    assert eventually(lambda: (store.lock_holder() or ("",))[0].endswith(f":{second.pid}"))
    assert second.stop() == 0
    assert store.lock_holder() is None
    for d in (first, second):
        assert "Traceback" not in d.log(), d.log()
    assert len(second.lines("monitoring in memory only")) == 1


CHILD = """
import signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def hup(n, f): out.write_text(out.read_text() + "HUP ")
def term(n, f):
    out.write_text(out.read_text() + "TERM")
    sys.exit(5)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, term)
out.write_text("ready ")
while True:
    time.sleep(0.1)
"""


def test_a_wrapper_passes_signals_on_and_waits(tmp_path: Path) -> None:
    """`ulm lab exec`'s wrapper (the lab test runs the command itself)."""
    out = tmp_path / "child.out"
    wrapper = subprocess.Popen([sys.executable, "-c", "import sys\nfrom ulm.procs import "
                                "run_forwarding\nsys.exit(run_forwarding(sys.argv[1:]))",
                                sys.executable, "-c", CHILD, str(out)])
    try:
        assert eventually(lambda: out.exists() and "ready" in out.read_text())
        wrapper.send_signal(signal.SIGHUP)
        assert eventually(lambda: "HUP" in out.read_text())
        assert wrapper.poll() is None
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=30) == 5  # the command's own status
    finally:
        wrapper.kill()
    assert out.read_text() == "ready HUP TERM"
