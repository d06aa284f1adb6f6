"""Failures in the daemon's log are warnings and errors, not news at INFO level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.test_maintenance import T0, rounds, setup


def test_a_failed_migration_is_logged_as_a_warning_or_worse(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    d, cluster, store = setup(tmp_path, {"a": "h1", "b": "h2"}, {"a": 512.0, "b": 512.0})
    rounds(d, 1)
    store.book("h1", T0 + 120, T0 + 7200, False, "firmware")
    cluster.fail["a"] = "destination refused the VM"
    with caplog.at_level(logging.INFO, logger="ulm"):
        rounds(d, 2)
    failed = [r for r in caplog.records if "destination refused the VM" in r.getMessage()]
    # WARNING: it failed and the VM is safe on its source; ERROR: lost, duplicated, paused
    assert failed and all(r.levelno >= logging.WARNING for r in failed), [
        (r.levelname, r.getMessage()) for r in caplog.records]
    # not retried at once: the VM is in back-off, and the plan says so
    assert len(failed) == 1
    assert any("back-off until" in r.getMessage() for r in caplog.records)
