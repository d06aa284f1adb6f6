"""Failures in the daemon's log are warnings and errors, not news at INFO level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.test_maintenance import T0, rounds, setup


def test_a_failed_migration_is_logged_as_an_error(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    d, cluster, store = setup(tmp_path, {"a": "h1", "b": "h2"}, {"a": 512.0, "b": 512.0})
    rounds(d, 1)
    store.book("h1", T0 + 120, T0 + 7200, False, "firmware")
    cluster.fail["a"] = "destination refused the VM"
    with caplog.at_level(logging.INFO, logger="ulm"):
        rounds(d, 2)
    failed = [r for r in caplog.records if "destination refused the VM" in r.getMessage()]
    assert failed and all(r.levelno == logging.ERROR for r in failed), [
        (r.levelname, r.getMessage()) for r in caplog.records]
    assert any(r.levelno == logging.INFO and " done " in r.getMessage()
               for r in caplog.records)  # the retry that worked stays INFO
