"""A host that reports nonsense is quarantined by the daemon: nothing moves to or from it, the
condition is logged once, and it ends when the figures are believable again."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.fakes import World, world
from tests.daemon.test_stale import moves
from ulm.collect.base import Collection
from ulm.collect.sim_source import SimSource


@dataclass
class Nonsense:
    """The simulated libvirt, with some hosts' readings overwritten (host -> fields)."""

    inner: SimSource
    bad: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = "libvirt"

    def collect(self, now: float) -> Collection:
        col = self.inner.collect(now)
        return Collection(col.ts, tuple(dataclasses.replace(h, **self.bad.get(h.host, {}))
                                        for h in col.hosts), col.vms)


def talking_nonsense(w: World) -> Nonsense:
    source = Nonsense(w.source)
    w.daemon.sources = [source]
    return source


def quarantine_logs(caplog: pytest.LogCaptureFixture, host: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(f"{host}: quarantined")]


def test_no_vm_moves_onto_a_host_reporting_zero_cpus(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # hA: 3.5 of 4 cores busy (87.5 % > 75 %): relief wants web1 on hB
    w = world(tmp_path, {"web1": "hA", "db": "hA"}, vm_cpu={"web1": 2.0, "db": 1.5})
    w.source.vm_vcpus.update(web1=2, db=2)
    source = talking_nonsense(w)
    w.rounds(1)  # hB seen sane once: 4 cores
    source.bad["hB"] = {"cores": 0}
    with caplog.at_level(logging.INFO, "ulm"):
        during = w.rounds(5)
        assert moves(during) == []  # the only destination is disbelieved
        last = during[-1].plan
        assert last is not None
        (row,) = [d for d in last.decisions if d.host == "hB"]
        assert row.trigger == "quarantined: reported 0 CPUs"
        assert "neither source nor destination" in row.outcome
        (began,) = quarantine_logs(caplog, "hB")  # once, not every round
        assert began.levelno == logging.WARNING and "reported 0 CPUs" in began.getMessage()
        # the store never took the 0: hB keeps the size it had (4 cores)
        assert w.store.snapshot(w.clock.now(), 4, 6.0).hosts[1].cores == 4
        assert not any("hB: its own figures are older" in r.getMessage()  # not also "stale"
                       for r in caplog.records)
        source.bad.clear()
        after = w.rounds(4)
    assert "web1: hA -> hB" in moves(after)  # believable again: decided on again
    assert len(quarantine_logs(caplog, "hB")) == 1
    assert sum("hB: its figures are believable again" in r.getMessage()
               for r in caplog.records) == 1


def test_a_host_reporting_cpu_beyond_its_cores_is_not_emptied(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path, {"web1": "hA", "db": "hA"})  # 1 of 4 cores busy: calm
    source = talking_nonsense(w)
    source.bad["hA"] = {"cpu": 5.0}  # 500 % of its cores: a counter gone wrong
    with caplog.at_level(logging.INFO, "ulm"):
        during = w.rounds(5)
    assert moves(during) == []  # without the guard, 500 % "overload" moves web1 off hA
    last = during[-1].plan
    assert last is not None
    (row,) = [d for d in last.decisions if d.host == "hA"]
    assert row.trigger == "quarantined: reported CPU 500% of its cores (limit 110%)"
    assert len(quarantine_logs(caplog, "hA")) == 1
    from ulm.notify.events import Kind
    from ulm.notify.make import of_condition
    event = of_condition("quarantine:hA", "hA: quarantined: ...", True, logging.WARNING)
    assert event.kind is Kind.host_stale and event.host == "hA"  # to the event stream as one
    assert not any(d.host == "hB" and d.trigger.startswith("quarantined")
                   for d in last.decisions)


def test_with_the_guard_off_the_nonsense_is_acted_on(tmp_path: Path) -> None:
    """The counter-proof: the same 500 % with `[collect.guard] enabled = false` moves a VM."""
    w = world(tmp_path, {"web1": "hA", "db": "hA"})
    from ulm.collect.guard import Quarantine
    from ulm.config import GuardConfig
    w.daemon.guard = Quarantine.of(GuardConfig(enabled=False))
    talking_nonsense(w).bad["hA"] = {"cpu": 5.0}
    assert moves(w.rounds(5)) != []


def test_the_quarantine_is_stored_for_status_and_the_recheck(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other processes read the store, not the daemon's memory: `ulm status` says why the
    host is quarantined, and the re-check of a later `ulm apply` refuses moves to and from
    it with that reason; once the figures are believable again, both forget it."""
    import json

    from tests.daemon.test_stale import status_now
    from ulm.execute.recheck import SnapshotCheck
    from ulm.model import Move
    from ulm.policy import resolve_policy
    from ulm.store import Store

    w = world(tmp_path, {"web1": "hA", "db": "hB"}, interval=10.0, rounds=3)
    source = talking_nonsense(w)
    w.rounds(1)
    source.bad["hB"] = {"cores": 0}
    w.rounds(2)
    reader = Store.open(w.daemon.cfg.store.url, mode="read")
    stale_s = w.daemon.cfg.collect.stale_s
    fresh = lambda: reader.snapshot(w.clock.now(), 4, stale_s)  # noqa: E731
    check = SnapshotCheck(lambda: resolve_policy("seed"), fresh)
    why = "hB is quarantined: reported 0 CPUs"
    assert check(Move("web1", "hA", "hB", "t")) == why
    assert check(Move("db", "hB", "hA", "t")) == why
    monkeypatch.setenv("COLUMNS", "200")  # the table's row on one line
    line = next(x for x in status_now(w, tmp_path).splitlines() if x.startswith("│ hB"))
    assert "on, quarantined: reported 0 CPUs" in line
    doc = json.loads(status_now(w, tmp_path, "--format", "json"))
    assert {h["name"]: h["quarantine"] for h in doc["hosts"]} == {
        "hA": "", "hB": "reported 0 CPUs"}
    source.bad.clear()
    w.rounds(1)
    check.feed(None)
    assert check(Move("web1", "hA", "hB", "t")) is None
    assert fresh().host_quarantine == ("", "")
