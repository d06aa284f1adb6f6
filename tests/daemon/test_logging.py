"""Failures at WARNING or ERROR, never INFO; a state that lasts is logged once, not per round."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.daemon.fakes import world
from ulm.daemon import Mode


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if text in r.getMessage()]


def test_a_silent_host_is_logged_when_it_falls_silent_and_when_it_answers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path, {"web1": "hA"}, mode=Mode.observe)
    w.cluster.powered["hB"] = False
    with caplog.at_level(logging.INFO, "ulm"):
        w.rounds(6)
        w.cluster.powered["hB"] = True
        w.rounds(3)
    assert messages(caplog, "hB says nothing") == [
        (logging.WARNING, "libvirt: hB says nothing: hB: connection refused")]
    assert messages(caplog, "hB answers again") == [(logging.INFO,
                                                     "libvirt: hB answers again")]


def test_a_failed_migration_is_a_warning_and_a_lasting_problem_is_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path, {"web1": "hA", "db": "hA"}, mode=Mode.enforce,
              vm_cpu={"web1": 2.0, "db": 2.0}, hosts=("hA", "hB"))
    w.source.forced["hA"] = 0.95
    w.cluster.fail["web1"] = "unable to connect to hB: connection refused"
    w.cluster.fail["db"] = "unable to connect to hB: connection refused"
    with caplog.at_level(logging.INFO, "ulm"):
        w.rounds(3)
    failed = [m for m in messages(caplog, " failed ") if "connection refused" in m[1]]
    assert failed and min(level for level, _ in failed) >= logging.WARNING
    assert not [r for r in caplog.records
                if r.levelno == logging.INFO and "failed" in r.getMessage()]
    w.cluster.powered["hB"] = False  # nowhere to go: the same problem every round
    caplog.clear()
    with caplog.at_level(logging.INFO, "ulm"):
        w.rounds(6)
    problems = messages(caplog, "plan problem")
    assert problems and len(problems) == len(set(problems))  # each one once
    assert {level for level, _ in problems} == {logging.WARNING}
