"""A host whose wake failed is no destination until collection has seen it up since (issue 10:
a silent BMC during a power-on, while Wake-on-LAN still started the host)."""

from __future__ import annotations

import logging

import pytest

from tests.builders import SEED, host, policy, snap, vm
from ulm.clock import SimClock
from ulm.drivers.base import PowerState
from ulm.drivers.sim import SimCluster, SimPower
from ulm.executor import Cause, Executor, Limits, MemoryJournal, Status
from ulm.model import HostState, Move, Plan, PowerOn
from ulm.scheduler import check_move, schedule

LIMITS = Limits(max_concurrent=4, max_per_host=1, deadline_s=60.0, poll_s=0.5,
                power_timeout_s=120.0)


class SilentAfterWake:
    """A BMC that takes the power-on (the host boots) and then answers nothing."""

    def __init__(self, inner: SimPower) -> None:
        self.inner = inner

    def power_on(self) -> None:
        self.inner.power_on()
        self.inner.cluster.dead_bmc.add(self.inner.host)

    def power_off(self) -> None:
        self.inner.power_off()

    def state(self) -> PowerState:
        return self.inner.state()


def woken_silently() -> tuple[SimCluster, Executor, list[Status], list[Cause], str]:
    clock = SimClock(1000.0)
    c = SimCluster(clock, {"a": "h1"}, {"a": 625.0})
    c.powered["h3"] = False
    power = {h: c.power(h) for h in ("h1", "h2")}
    ex = Executor(c, clock, MemoryJournal(), LIMITS,
                  power={**power, "h3": SilentAfterWake(c.power("h3"))})  # type: ignore[dict-item]
    res = ex.execute(Plan("s", "p", 0.0, (PowerOn("h3", "headroom"),
                                         Move("a", "h1", "h3", "relief"))), "p1")
    return (c, ex, [o.status for o in res.outcomes], [o.cause for o in res.outcomes],
            res.outcomes[1].detail)


def test_a_move_to_a_host_whose_wake_failed_is_refused_though_the_host_is_up(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "ulm.executor"):
        c, _, status, cause, detail = woken_silently()
    assert c.is_on("h3")  # the host did come up: the old code moved the VM there
    assert status == [Status.FAILED, Status.SKIPPED]
    assert cause == [Cause.POWER, Cause.WAKE_FAILED]
    assert "its wake failed" in detail and "h3" in detail
    assert c.locate("a") == ["h1"]
    told = [r for r in caplog.records if "skipped" in r.getMessage() and "a h1->h3" in
            r.getMessage()]
    assert told and told[0].levelno == logging.WARNING


def test_collection_in_a_later_round_clears_the_bar(caplog: pytest.LogCaptureFixture) -> None:
    _, ex, _, _, _ = woken_silently()
    failed_at = ex.clock.now()
    cluster = [host("h1"), host("h3")]
    vms = [vm("web", on="h1", load=4.0, size=4.0), vm("db", on="h1", load=3.0, size=4.0)]
    pol = policy(SEED)
    move = Move("web", "h1", "h3", "relief")
    # A round whose figures may predate the failure: h3 stays barred, and says why.
    early = ex.with_backoff(snap(cluster, vms, at=failed_at + 5.0), stale_s=30.0)
    assert "its wake failed" in (check_move(early, pol, move) or "")
    plan = schedule(early, pol, early.taken_at)
    assert not [a for a in plan.actions if isinstance(a, Move) and a.dst == "h3"]
    assert any("its wake failed" in d.trigger for d in plan.decisions)
    assert ex.wakes.barred("h3")
    # Down or not seen since: still barred.
    down = [host("h1"), host("h3", state=HostState.UNKNOWN)]
    ex.with_backoff(snap(down, vms, at=failed_at + 60.0), stale_s=30.0)
    assert ex.wakes.barred("h3")
    # Up, with every figure taken after the failure: a destination again.
    with caplog.at_level(logging.INFO, "ulm.executor"):
        later = ex.with_backoff(snap(cluster, vms, at=failed_at + 60.0), stale_s=30.0)
    assert not ex.wakes.barred("h3") and check_move(later, pol, move) is None
    assert any("h3: seen up by collection since its failed wake" in r.getMessage()
               for r in caplog.records)


def test_a_later_successful_wake_clears_the_bar() -> None:
    _, ex, _, _, _ = woken_silently()
    assert ex.wakes.barred("h3")
    c: SimCluster = ex.hv  # type: ignore[assignment]
    c.dead_bmc.discard("h3")
    ex.power["h3"] = c.power("h3")
    res = ex.execute(Plan("s", "p", 0.0, (PowerOn("h3", "again"),)), "p2")
    assert res.outcomes[0].status is Status.DONE
    assert not ex.wakes.barred("h3")
