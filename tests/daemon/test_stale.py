"""Nothing is decided from stale data: a dead munin-node's last figure, a VM nobody lists."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from tests.daemon.fakes import FakeMunin, World, world
from tests.warm_ulm import warm_ulm
from ulm.daemon import RoundResult
from ulm.model import Move


def status(cfg: Path, *args: str) -> str:
    out = warm_ulm().run(["status", "-c", str(cfg), *args], timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def moves(results: list[RoundResult]) -> list[str]:
    out = []
    for r in results:
        if r.plan is not None:
            out += [f"{a.vm}: {a.src} -> {a.dst}" for a in r.plan.actions if isinstance(a, Move)]
    return out


def config_file(w: World, tmp: Path, stale_after_s: float | None = None) -> Path:
    """The same store as a ulm.toml, for `ulm status` (which only reads the store)."""
    hosts = "".join(f'[[hosts]]\nname = "{h}"\nlibvirt_uri = "test:///default"\n'
                    for h in w.source.cores)
    stale = "" if stale_after_s is None else f"stale_after_s = {stale_after_s:.3f}\n"
    path = tmp / "ulm.toml"
    path.write_text(f'[store]\nurl = "{w.daemon.cfg.store.url}"\n[collect]\n'
                    f"interval_s = {w.daemon.cfg.collect.interval_s:g}\n{stale}"
                    f"window = 4\n{hosts}")
    return path


def status_now(w: World, tmp: Path, *args: str) -> str:
    """`ulm status` as if it ran at the daemon's (simulated) now. The daemon's rounds ended
    about when the test began (`world(rounds=...)`), but `ulm status` reads the wall clock,
    which has run on since by however long a loaded machine took. So its config says stale
    after the daemon's own `stale_s` plus that lag, measured from the test's own clocks just
    before the command (the warm `ulm` already up): fresh for the daemon is fresh for status,
    and what the daemon saw as stale ages by at least as much."""
    warm_ulm().start()
    lag = max(time.time() - w.clock.now(), 0.0)
    return status(config_file(w, tmp, w.daemon.cfg.collect.stale_s + lag), *args)


def test_a_dead_munin_node_leaves_no_figure_to_act_on(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    hot, cool = FakeMunin(0.95), FakeMunin(0.10)
    try:
        w = world(tmp_path, {"web1": "hA", "db": "hA"}, munin={"hA": hot.address,
                  "hB": cool.address}, interval=10.0, rounds=3 + 4 + 3)
        assert moves(w.rounds(3))[-1] == "web1: hA -> hB"  # fresh and hot: relieved
        hot.stop()  # munin-node on hA dies; libvirt on hA still answers
        stale_s = w.daemon.cfg.collect.stale_s
        with caplog.at_level(logging.INFO, "ulm"):
            after = w.rounds(int(stale_s / w.daemon.cfg.collect.interval_s) + 1)[-1:] + \
                w.rounds(3)
    finally:
        hot.stop()
        cool.stop()
    assert moves(after) == []  # 95 % that nobody measured any more decides nothing
    last = after[-1]
    assert last.plan is not None
    (row,) = [d for d in last.plan.decisions if d.host == "hA"]
    assert row.trigger == "stale host metrics (last figure 95%)"
    assert "host figures stale" in row.outcome
    snap = w.store.snapshot(w.clock.now(), 4, stale_s)
    ha, hb = snap.hosts
    assert ha.stale and not hb.stale and ha.cpu_history[-1] == pytest.approx(0.95)
    warned = [r for r in caplog.records if "hA: its own figures are older" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING  # once, not every round
    silent = [r for r in caplog.records if "munin: hA says nothing" in r.getMessage()]
    assert len(silent) == 1 and silent[0].levelno == logging.WARNING
    table = status_now(w, tmp_path).splitlines()
    assert "(host 95%, stale)" in next(x for x in table if "│ hA" in x)
    assert "(host 10%)" in next(x for x in table if "│ hB" in x)


def test_fresh_munin_figures_again_end_the_staleness(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    node = FakeMunin(0.30)
    w = world(tmp_path, {"web1": "hA"}, hosts=("hA",), munin={"hA": node.address})
    w.rounds(2)
    address = node.address
    node.stop()
    w.rounds(6)
    assert w.store.snapshot(w.clock.now(), 4, 6.0).hosts[0].stale
    revived = FakeMunin(0.30)
    try:
        w.daemon.sources[1].nodes["hA"] = revived.address  # type: ignore[attr-defined]
        with caplog.at_level(logging.INFO, "ulm"):
            w.rounds(3)
    finally:
        revived.stop()
    assert address != ""
    assert not w.store.snapshot(w.clock.now(), 4, 6.0).hosts[0].stale
    assert any("hA: its own figures are fresh" in r.getMessage() for r in caplog.records)


def test_a_vm_killed_with_its_host_is_reported_gone(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path, {"web1": "hA", "db": "hB"}, interval=10.0, rounds=3 + 5)
    w.rounds(3)
    w.cluster.powered["hA"] = False  # hA crashes: web1 dies with it, nobody lists it
    with caplog.at_level(logging.INFO, "ulm"):
        w.rounds(5)
    snap = w.store.snapshot(w.clock.now(), 4, w.daemon.cfg.collect.stale_s)
    db, web1 = snap.vms
    assert web1.gone and web1.stale and not db.gone
    gone = [r for r in caplog.records if "VM web1 is gone" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelno == logging.WARNING
    assert "last on hA, which is unknown" in gone[0].getMessage()
    table = status_now(w, tmp_path).splitlines()
    assert "gone" in next(x for x in table if x.startswith("│ web1"))
    doc = json.loads(status_now(w, tmp_path, "--format", "json"))
    assert {v["name"]: v["gone"] for v in doc["vms"]} == {"web1": True, "db": False}


def test_status_after_the_daemon_stopped_says_what_it_knows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's rounds ended long ago (its simulated clock is far behind the real one):
    every host is unknown now, but `ulm status` says when each was last seen, and that no
    daemon runs."""
    w = world(tmp_path, {"web1": "hA", "db": "hB"})
    w.rounds(2)
    w.daemon.release()  # stopped: the lease given back
    monkeypatch.setenv("COLUMNS", "250")
    out = status(config_file(w, tmp_path))
    assert "No daemon is running on this store: the figures are the last ones collected" in out
    row = next(x for x in out.splitlines() if x.startswith("│ hA"))
    assert "unknown (last seen " in row and " s ago)" in row
