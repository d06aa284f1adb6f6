"""Faults against `SimCluster`: every wait bounded, every failure reported when it happens,
a failed VM never left paused, failed moves backing off, a bounded shutdown and recovery."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from tests.builders import SEED, host, policy, snap, vm
from ulm.clock import SimClock
from ulm.drivers.base import DomainState
from ulm.drivers.sim import SimCluster
from ulm.executor import Cause, Executor, Limits, MemoryJournal, Outcome, Status
from ulm.model import Move, Plan
from ulm.scheduler import schedule

LIMITS = Limits(max_concurrent=4, max_per_host=1, deadline_s=60.0, poll_s=0.5,
                abort_grace_s=30.0, settle_s=10.0, stall_s=20.0, shutdown_grace_s=30.0,
                backoff_base_s=120.0, backoff_cap_s=1000.0, backoff_pair_factor=4.0)
T0 = 1000.0


class Timers(SimClock):
    """A simulated clock that runs callbacks when time passes them (a signal, a fault)."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.due: list[tuple[float, Callable[[], None]]] = []

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        for t, fn in [d for d in self.due if d[0] <= self.now()]:
            self.due.remove((t, fn))
            fn()


class TimedJournal(MemoryJournal):
    """Remembers when each outcome was recorded."""

    recorded_at: list[float]

    def record_outcome(self, plan_id: str, seq: int, o: Outcome) -> None:
        assert self.clock is not None
        super().record_outcome(plan_id, seq, o)
        self.recorded_at = [*getattr(self, "recorded_at", []), self.clock.now()]


class ClockedLog(logging.Handler):
    """Log records with the simulated time at which they were emitted."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(logging.DEBUG)
        self.clock = clock
        self.lines: list[tuple[float, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((self.clock.now(), record.levelno, record.getMessage()))


@pytest.fixture
def clog() -> Iterator[ClockedLog]:
    handler = ClockedLog(SimClock())
    logger = logging.getLogger("ulm.executor")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def cluster(**placement: str) -> SimCluster:
    return SimCluster(Timers(T0), dict(placement), {v: 625.0 for v in placement})  # 10 s each


def executor(c: SimCluster, limits: Limits = LIMITS,
             journal: MemoryJournal | None = None) -> Executor:
    return Executor(c, c.clock, journal or MemoryJournal(clock=c.clock), limits)


def move(vm_: str = "a", src: str = "h1", dst: str = "h2") -> Plan:
    return Plan("snap", "pol", 0.0, (Move(vm_, src, dst, "t"),))


def test_a_failing_abort_does_not_hang_the_wait() -> None:
    c = cluster(a="h1")
    c.slow["a"] = 1000.0  # 10,000 s
    c.abort_fails["a"] = "Timed out during operation: cannot acquire state change lock"
    journal = MemoryJournal(clock=c.clock)
    o = executor(c, journal=journal).execute(move(), "p").outcomes[0]
    assert o.status is Status.FAILED and o.cause is Cause.ABORT_TIMEOUT
    assert o.finished_at - o.started_at <= 60 + 30 + 10 + 1  # deadline, grace, settle
    assert "abort failed (Timed out during operation" in o.detail
    assert "stopped waiting after 30 s" in o.detail
    # it says where the VM is: still running on its source, the incoming copy paused
    assert c.states("a") == {"h1": DomainState.RUNNING, "h2": DomainState.PAUSED}
    assert o.where == ("h1", "h2") and "h1 (running), h2 (paused)" in o.detail
    assert journal.entries[1].state == "failed" and journal.outcomes


def test_the_abort_is_issued_at_the_deadline_not_a_poll_later(clog: ClockedLog) -> None:
    c = cluster(a="h1")
    clog.clock = c.clock
    c.slow["a"] = 100.0
    limits = Limits(max_concurrent=4, deadline_s=60.0, poll_s=7.0)
    o = executor(c, limits).execute(move(), "p").outcomes[0]
    assert o.cause is Cause.DEADLINE and "deadline of 60 s passed: aborted" in o.detail
    assert o.finished_at - o.started_at <= 60.5
    aborting = [t for t, _, m in clog.lines if "aborting" in m]
    assert aborting == [T0 + 60.0]


@pytest.mark.parametrize("poll_s", [0.5, 2.5, 7.0])
def test_an_aborted_migration_ends_within_the_overshoot_of_its_deadline(poll_s: float) -> None:
    """libvirt takes a moment to cancel (here 0.5 s): the job, and the copies' settling, are
    looked at closely from the abort on, not a whole poll interval later."""
    from ulm.execute.migrate import ABORT_POLL_S, OVERSHOOT_S

    c = cluster(a="h1")
    c.slow["a"] = 100.0
    c.cancel_s = 0.5
    limits = Limits(max_concurrent=4, deadline_s=60.0, poll_s=poll_s)
    journal = MemoryJournal(clock=c.clock)
    o = executor(c, limits, journal).execute(move(), "p").outcomes[0]
    assert o.cause is Cause.DEADLINE and "a still runs on h1" in o.detail
    # the cancel, then at most one close look past it
    assert o.finished_at - o.started_at <= 60.0 + c.cancel_s + ABORT_POLL_S + 1e-9
    assert c.cancel_s + ABORT_POLL_S <= OVERSHOOT_S  # what the bound promises, kept
    assert journal.outcomes[0][2].finished_at == o.finished_at  # recorded as it ended


def test_each_outcome_is_recorded_and_logged_when_it_happens(clog: ClockedLog) -> None:
    c = cluster(a="h1", b="h1")
    clog.clock = c.clock
    c.fail["a"] = "internal error: qemu unexpectedly closed the monitor"
    journal = TimedJournal(clock=c.clock)
    ex = executor(c, journal=journal)
    plan = Plan("s", "p", 0.0, (Move("a", "h1", "h2", "t"), Move("b", "h1", "h3", "t")))
    res = ex.execute(plan, "p1")  # one source: a first, then b (10 s)
    assert [o.status for o in res.outcomes] == [Status.FAILED, Status.DONE]
    assert [(p, s, getattr(o.action, "vm", "")) for p, s, o in journal.outcomes] == [
        ("p1", 1, "a"), ("p1", 2, "b")]
    assert journal.recorded_at[0] < T0 + 1 < T0 + 10 <= journal.recorded_at[1]
    failures = [(t, lvl, m) for t, lvl, m in clog.lines if lvl >= logging.WARNING]
    assert len(failures) == 1  # once, when it happened, with the VM and both hosts
    t, lvl, msg = failures[0]
    assert t < T0 + 1 and lvl == logging.WARNING
    assert "a h1->h2" in msg and "qemu unexpectedly closed the monitor" in msg


def test_a_failed_move_backs_off_exponentially_and_per_destination() -> None:
    c = cluster(a="h1")
    ex = executor(c)
    c.fail["a"] = "boom"
    assert ex.execute(move(), "p1").outcomes[0].status is Status.FAILED
    again = ex.execute(move(), "p2").outcomes[0]  # re-planned at once: not re-tried
    assert again.status is Status.SKIPPED and again.cause is Cause.BACKOFF
    assert "back-off for 120 s more after failed migration" in again.detail
    assert c.migrations == 0 and not c.jobs.get("sim-2")
    c.clock.sleep(121)  # the VM may move again, but not to h2 (4 x 120 s)
    to_h2 = ex.execute(move(), "p3").outcomes[0]
    assert to_h2.cause is Cause.BACKOFF and "a to h2: back-off" in to_h2.detail
    c.fail["a"] = "boom again"
    second = ex.execute(move(dst="h3"), "p4").outcomes[0]
    assert second.status is Status.FAILED and "back-off for 240 s" in second.detail
    c.clock.sleep(241)
    assert ex.execute(move(dst="h3"), "p5").outcomes[0].cause is Cause.BACKOFF  # pair: 480 s
    done = ex.execute(move(dst="h4"), "p6").outcomes[0]
    assert done.status is Status.DONE and ex.backoff.vm_until("a", c.clock.now()) is None


def test_back_off_reaches_the_scheduler_through_the_snapshot() -> None:
    hot = [host("h1"), host("h2"), host("h3")]
    vms = [vm("a", "h1", 4.0), vm("b", "h1", 2.5, migratable=False)]  # h1 at 81 %
    c = cluster(a="h1")
    ex = executor(c)
    c.fail["a"] = "boom"
    ex.execute(move(), "p")
    now = c.clock.now()
    before = schedule(snap(hot, vms, now), policy(SEED), now)
    assert [m.vm for m in before.moves] == ["a"]
    s = ex.with_backoff(snap(hot, vms, now))
    assert s.vms[0].backoff_until == pytest.approx(now + 120.0)
    assert s.id != snap(hot, vms, now).id
    plan = schedule(s, policy(SEED), now)
    assert plan.moves == ()  # kept, and the explain table says why
    assert [(d.vm, d.outcome) for d in plan.decisions] == [
        ("a", "kept: back-off until 1970-01-01T00:18:40Z after failed migration")]
    later = schedule(ex.with_backoff(snap(hot, vms, now + 121)), policy(SEED), now + 121)
    # the VM may move again, but not back to h2, the destination that failed it (4 x 120 s)
    assert [(m.vm, m.dst) for m in later.moves] == [("a", "h3")]
    row = next(d for d in later.decisions if d.vm == "a")
    assert row.rejections["destination backing off after a failed move (359 s left)"] == 1
    free = schedule(ex.with_backoff(snap(hot, vms, now + 481)), policy(SEED), now + 481)
    assert [(m.vm, m.dst) for m in free.moves] == [("a", "h2")]


def test_back_off_survives_a_restart() -> None:
    c = cluster(a="h1")
    journal = MemoryJournal(clock=c.clock)
    c.fail["a"] = "boom"
    executor(c, journal=journal).execute(move(), "p")
    again = executor(c, journal=journal)  # a new process, the same store
    again.recover()
    assert again.execute(move(), "p2").outcomes[0].cause is Cause.BACKOFF


def test_a_vm_left_paused_on_its_source_is_resumed_and_reported(clog: ClockedLog) -> None:
    c = cluster(a="h1")
    c.fail["a"] = "operation failed: migration out job: unexpectedly failed"
    c.pause_on_failure.add("a")
    o = executor(c).execute(move(), "p").outcomes[0]
    assert o.status is Status.FAILED and o.resumed and not o.paused_on
    assert "left paused on h1: resumed" in o.detail
    assert c.states("a") == {"h1": DomainState.RUNNING}
    assert any(lvl == logging.WARNING and "a was left paused on h1" in m and "resumed" in m
               for _, lvl, m in clog.lines)


def test_a_vm_that_cannot_be_resumed_is_reported_paused_not_running(clog: ClockedLog) -> None:
    c = cluster(a="h1")
    c.fail["a"] = "boom"
    c.pause_on_failure.add("a")
    c.resume_fails["a"] = "internal error: unable to execute QEMU command 'cont'"
    o = executor(c).execute(move(), "p").outcomes[0]
    assert o.paused_on == ("h1",) and not o.resumed
    assert "a is paused on h1" in o.detail and "still runs" not in o.detail
    assert any(lvl == logging.ERROR and "resuming it failed" in m for _, lvl, m in clog.lines)
    assert any(lvl == logging.ERROR and "a h1->h2" in m for _, lvl, m in clog.lines)


def test_a_paused_or_crashed_vm_is_not_moved() -> None:
    c = cluster(a="h1", b="h1")
    c.paused.add("a")
    c.crashed.add("b")
    res = executor(c).execute(Plan("s", "p", 0.0, (Move("a", "h1", "h2", "t"),
                                                   Move("b", "h1", "h3", "t"))), "p")
    assert res.outcomes[0].cause is Cause.PAUSED
    assert res.outcomes[0].detail == "a is paused on h1: not moved"
    assert res.outcomes[1].status is Status.SKIPPED and "b runs on no host" in \
        res.outcomes[1].detail
    assert c.migrations == 0 and not c.jobs


def test_recovery_applies_the_deadline_logs_and_records(clog: ClockedLog) -> None:
    c = cluster(a="h1")
    clog.clock = c.clock
    c.slow["a"] = 100.0  # 1,000 s
    journal = MemoryJournal(clock=c.clock)
    entry = journal.intent("p", 1, Move("a", "h1", "h2", "t"))
    journal.update(entry, "started", c.start_migration("a", "h1", "h2", executor(c)._options()))
    c.clock.sleep(75)  # ULM was down past the 60 s deadline
    t = c.clock.now()
    out = executor(c, journal=journal).recover()
    assert c.clock.now() - t <= 30 + 10 + 1  # bounded: abort grace + settle
    assert out[0].status is Status.FAILED and out[0].cause is Cause.DEADLINE
    assert c.locate("a") == ["h1"] and journal.entries[entry].state == "failed"
    assert [o.action for _, _, o in journal.outcomes] == [Move("a", "h1", "h2", "t")]
    said = [m for _, lvl, m in clog.lines if lvl == logging.WARNING and "recovery" in m]
    assert said and "a h1->h2" in said[0] and "since 1970-01-01T00:16:40Z" in said[0]
    assert "passed: aborting it" in said[0]


def test_a_move_that_completed_during_recovery_gets_its_outcome_row() -> None:
    c = cluster(a="h1")
    journal = MemoryJournal(clock=c.clock)
    entry = journal.intent("p", 1, Move("a", "h1", "h2", "t"))
    journal.update(entry, "started", c.start_migration("a", "h1", "h2", executor(c)._options()))
    out = executor(c, journal=journal).recover()
    assert out[0].status is Status.DONE and c.locate("a") == ["h2"]
    assert [(p, s, o.status) for p, s, o in journal.outcomes] == [("p", 1, Status.DONE)]


def test_a_stall_is_logged_while_it_happens(clog: ClockedLog) -> None:
    c = cluster(a="h1")
    clog.clock = c.clock
    c.stall["a"] = 4.0  # data remaining stops falling 4 s in
    o = executor(c).execute(move(), "p").outcomes[0]
    stalls = [(t, lvl) for t, lvl, m in clog.lines if "a h1->h2 stalled" in m]
    assert stalls and stalls[0][1] == logging.WARNING
    assert T0 + 4 + 20 <= stalls[0][0] <= T0 + 4 + 21  # when it happened, not at the end
    assert len(stalls) == 1
    assert o.cause is Cause.DEADLINE and "stalled for 56 s" in o.detail


def test_a_network_cut_is_noticed_during_the_cut(clog: ClockedLog) -> None:
    c = cluster(a="h1")
    clog.clock = c.clock
    c.slow["a"] = 3.0  # 30 s of transfer
    c.cut["h2"] = (T0 + 5, T0 + 45)
    o = executor(c).execute(move(), "p").outcomes[0]
    stalls = [t for t, _, m in clog.lines if "a h1->h2 stalled" in m]
    assert stalls and stalls[0] < T0 + 45  # before the link returns
    assert o.cause is Cause.DEADLINE and c.locate("a") == ["h1"]


def test_sigterm_aborts_in_flight_migrations_after_the_grace() -> None:
    c = cluster(a="h1")
    c.slow["a"] = 100.0
    limits = Limits(deadline_s=600.0, poll_s=0.5, shutdown_grace_s=30.0)
    journal = MemoryJournal(clock=c.clock)
    ex = executor(c, limits, journal)
    assert isinstance(c.clock, Timers)
    c.clock.due.append((T0 + 10, lambda: ex.request_stop()))
    o = ex.execute(move(), "p").outcomes[0]
    assert o.status is Status.FAILED and o.cause is Cause.SHUTDOWN
    assert T0 + 40 <= o.finished_at <= T0 + 41  # not the 600 s deadline
    assert c.locate("a") == ["h1"]
    assert "ULM stopping: shutdown grace of 30 s passed: aborted" in journal.details[1]
    assert "a still runs on h1" in journal.details[1]


def test_stopping_flag_gets_the_default_grace_and_a_zero_grace_aborts_at_once() -> None:
    c = cluster(a="h1", b="h3")
    c.slow["a"] = c.slow["b"] = 100.0
    ex = executor(c, Limits(deadline_s=600.0, poll_s=0.5, shutdown_grace_s=20.0))
    assert isinstance(c.clock, Timers)

    def stop() -> None:
        ex.stopping = True  # what the daemon's handler does today

    c.clock.due.append((T0 + 5, stop))
    c.clock.due.append((T0 + 6, lambda: ex.request_stop(0.0)))  # a second signal: now
    res = ex.execute(Plan("s", "p", 0.0, (Move("a", "h1", "h2", "t"),
                                          Move("b", "h3", "h4", "t"))), "p")
    assert [o.cause for o in res.outcomes] == [Cause.SHUTDOWN, Cause.SHUTDOWN]
    assert all(o.finished_at <= T0 + 7 for o in res.outcomes)
    assert c.locate("a") == ["h1"] and c.locate("b") == ["h3"]
