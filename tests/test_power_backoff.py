"""A power-off that failed (a silent BMC) backs its host off: it is not asked again every
round, each time blocking the plan for the BMC's timeout (issue 10, "failures ... retried
without back-off")."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.test_maintenance import rounds, setup
from ulm.executor import Cause, Status
from ulm.model import Plan, PowerOff
from ulm.policy import parse_policy


def test_a_failed_power_off_is_not_retried_every_round(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    d, cluster, store = setup(tmp_path, {"a": "h1"}, {"a": 512.0})
    d.policy = parse_policy("[overload]\nthreshold = 0.9\n[consolidation]\nenabled = true\n")
    cluster.dead_bmc.update({"h2", "h3"})  # both empty hosts: their BMCs do not answer
    with caplog.at_level(logging.INFO, "ulm.executor"):
        rounds(d, 8)  # 8 minutes: tried at once, then after 2 and 4 more minutes at the most
    tries = [(e["host"], e["result"]) for e in store.power_events() if e["action"] == "off"]
    assert tries.count(("h2", "failed")) == tries.count(("h3", "failed")) == 3, tries
    failed = [r for r in caplog.records if "power_off h2 failed" in r.getMessage()]
    assert failed and all(r.levelno == logging.WARNING for r in failed)
    assert "not powered off again for 120 s" in failed[0].getMessage()
    # an older plan that still asks for it is skipped, not sent to the silent BMC
    res = d.executor.execute(Plan("s", "p", 0.0, (PowerOff("h2", "old plan"),)), "old")
    (o,) = res.outcomes
    assert o.status is Status.SKIPPED and o.cause is Cause.BACKOFF
    assert "after a failed power-off" in o.detail
    # the BMC answers again: once the back-off has run out, the host is powered off
    cluster.dead_bmc.clear()
    rounds(d, 10)
    assert not cluster.is_on("h2") and not cluster.is_on("h3")
