"""Two real `ulm run` processes on one store: one leads, the other waits as a standby and
takes over when the leader dies (SIGKILL) or stops renewing its lease (paused: SIGSTOP),
then reconciles the journal the leader left open."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from tests.daemon.procs import ULM, Daemon, configure, eventually
from ulm.model import Move, Plan
from ulm.store import Store
from ulm.store import schema as t
from ulm.store.lease import holder
from ulm.store.records import action_dict

HA = "[ha]\nlease_s = 4\npoll_s = 1\n"  # a standby takes over within 5 s of the last renewal


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGCONT)
        d.kill()


def pair(tmp_path: Path, daemons: list[Daemon]) -> tuple[Store, Daemon, Daemon]:
    cfg = configure(tmp_path)
    cfg.write_text(cfg.read_text() + HA)
    leader = Daemon(cfg, name="leader")
    daemons.append(leader)
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    assert eventually(lambda: (store.lock_holder() or ("",))[0].endswith(f":{leader.pid}"))
    standby = Daemon(cfg, name="standby", args=("--standby",))
    daemons.append(standby)
    line = standby.wait_for("standby: ")
    assert f"pid {leader.pid} on {socket.gethostname()} leads (epoch 1)" in line
    assert "taking over within 5 s of its last renewal" in line
    return store, leader, standby


def status(tmp_path: Path) -> str:
    out = subprocess.run([ULM, "status", "-c", str(tmp_path / "ulm.toml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_standby_takes_over_from_a_killed_leader_and_recovers(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    store, leader, standby = pair(tmp_path, daemons)
    here = socket.gethostname()
    shown = status(tmp_path)
    assert f"Leader: pid {leader.pid} on {here}, epoch 1, since " in shown
    assert f"standby: pid {standby.pid} on {here} waiting since" in shown
    # The leader was migrating when it died: its journal entry, under its epoch, is open.
    now = time.time()
    move = Move("test", "t1", "t2", "test")
    plan_id = store.save_plan(Plan("snap", "pol", now, (move,)), "enforce")
    with store.engine.begin() as c:
        c.execute(insert(t.journal).values(
            plan_id=plan_id, seq=1, kind="move", state="started", detail="job-1", ts=now,
            updated_at=now, epoch=1, payload=action_dict(move)))
    leader.kill()
    standby.wait_for("leading this store (epoch 2")
    taken = standby.lines("took over the lease of")
    assert taken and f"pid {leader.pid}" in taken[0] and "that process is gone" in taken[0]
    h = holder(store.engine)
    assert h is not None and (h.owner.endswith(f":{standby.pid}"), h.epoch) == (True, 2)
    # recover() ran once it led (in the background: the rounds go on meanwhile): the entry
    # is closed and its outcome recorded, once (the row comes right after the entry closes)
    assert eventually(lambda: store.open_entries() == [] and bool(store.outcomes(plan_id)))
    outcomes = store.outcomes(plan_id)
    assert [(o["status"], o["vm"]) for o in outcomes] == [("failed", "test")]
    assert "interrupted by a restart" in outcomes[0]["detail"]
    assert standby.stop() == 0 and store.lock_holder() is None
    assert "Traceback" not in standby.log()


def test_a_paused_leader_loses_the_lead_and_stops(tmp_path: Path,
                                                  daemons: list[Daemon]) -> None:
    store, leader, standby = pair(tmp_path, daemons)
    leader.proc.send_signal(signal.SIGSTOP)  # alive, but renews nothing: its lease runs out
    line = standby.wait_for("standby: took over the lead (epoch 2)", timeout=30)
    assert f"from pid {leader.pid}" in line
    assert not standby.lines("took over the lease of")  # it waited for expiry: pid alive
    leader.proc.send_signal(signal.SIGCONT)
    assert leader.proc.wait(timeout=60) == 1  # woke up, found the lead gone: not a clean stop
    lost = leader.lines("lost the store lease")
    assert len(lost) == 1 and f"taken by pid {standby.pid}" in lost[0]
    assert "epoch 2, ours was 1" in lost[0]
    h = holder(store.engine)
    assert h is not None and h.owner.endswith(f":{standby.pid}") and h.epoch == 2
    assert standby.stop() == 0
