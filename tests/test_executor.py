"""The executor against `SimCluster`: the real executor, a simulated far side."""

from __future__ import annotations

from ulm.clock import SimClock
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits, MemoryJournal, Status
from ulm.model import Move, Plan, PowerOff, PowerOn

LIMITS = Limits(max_concurrent=4, max_per_host=1, deadline_s=60.0, poll_s=0.5,
                power_timeout_s=120.0)


def cluster(**placement: str) -> SimCluster:
    clock = SimClock(1000.0)
    return SimCluster(clock, dict(placement), {vm: 625.0 for vm in placement})  # 10 s each


def plan(*actions: Move | PowerOff | PowerOn) -> Plan:
    return Plan("snap", "pol", 0.0, tuple(actions))


def executor(c: SimCluster, journal: MemoryJournal | None = None, **kw: object) -> Executor:
    return Executor(c, c.clock, journal or MemoryJournal(), LIMITS,
                    power={h: c.power(h) for h in ("h1", "h2", "h3")}, **kw)  # type: ignore[arg-type]


def test_migrates_and_verifies_where_the_vm_runs() -> None:
    c = cluster(a="h1", b="h1")
    journal = MemoryJournal()
    res = executor(c, journal).execute(plan(Move("a", "h1", "h2", "t"), Move("b", "h1", "h3",
                                                                          "t")), "p1")
    assert [o.status for o in res.outcomes] == [Status.DONE, Status.DONE]
    assert c.locate("a") == ["h2"] and c.locate("b") == ["h3"]
    assert {e.state for e in journal.entries.values()} == {"done"}
    # one migration at a time per host: h1 is the source of both, so they ran one after other
    assert c.clock.now() - 1000.0 >= 20.0


def test_independent_migrations_run_in_parallel() -> None:
    c = cluster(a="h1", b="h3")
    res = executor(c).execute(plan(Move("a", "h1", "h2", "t"), Move("b", "h3", "h4", "t")), "p")
    assert [o.status for o in res.outcomes] == [Status.DONE, Status.DONE]
    assert c.clock.now() - 1000.0 < 15.0  # two 10 s migrations on four distinct hosts


def test_stale_move_is_skipped_with_the_reason() -> None:
    c = cluster(a="h3")
    res = executor(c).execute(plan(Move("a", "h1", "h2", "t")), "p")
    assert res.outcomes[0].status is Status.SKIPPED
    assert res.outcomes[0].detail == "a runs on ['h3'], not on h1"
    assert c.locate("a") == ["h3"] and c.migrations == 0


def test_live_recheck_refuses_a_move_that_no_longer_fits() -> None:
    c = cluster(a="h1")
    ex = executor(c, check=lambda m: f"{m.dst} no longer fits {m.vm}: CPU full")
    res = ex.execute(plan(Move("a", "h1", "h2", "t")), "p")
    assert res.outcomes[0].status is Status.SKIPPED
    assert "CPU full" in res.outcomes[0].detail and c.locate("a") == ["h1"]


def test_never_touches_an_unmanaged_vm() -> None:
    c = cluster(a="h1")
    res = executor(c, manages=lambda vm: vm != "a").execute(plan(Move("a", "h1", "h2", "t")),
                                                            "p")
    assert res.outcomes[0].status is Status.SKIPPED and c.locate("a") == ["h1"]


def test_failed_migration_leaves_the_vm_on_its_source_once() -> None:
    c = cluster(a="h1")
    c.fail["a"] = "internal error: qemu unexpectedly closed the monitor"
    res = executor(c).execute(plan(Move("a", "h1", "h2", "t")), "p")
    o = res.outcomes[0]
    assert o.status is Status.FAILED
    assert "qemu unexpectedly closed" in o.detail and "a still runs on h1" in o.detail
    assert c.locate("a") == ["h1"]


def test_deadline_aborts_a_slow_migration() -> None:
    c = cluster(a="h1")
    c.slow["a"] = 100.0  # 1000 s, deadline 60 s
    res = executor(c).execute(plan(Move("a", "h1", "h2", "t")), "p")
    o = res.outcomes[0]
    assert o.status is Status.FAILED and "deadline of 60 s passed: aborted" in o.detail
    assert c.locate("a") == ["h1"]
    assert 60.0 <= o.finished_at - o.started_at <= 62.0


def test_destination_powered_off_mid_migration() -> None:
    c = cluster(a="h1")
    c.slow["a"] = 3.0
    ex = executor(c)
    job = c.start_migration("a", "h1", "h2", ex._options())
    c.clock.sleep(5)
    c.power("h2").power_off()
    status = c.poll(job)
    assert status.state.value == "failed" and c.locate("a") == ["h1"]


def test_never_powers_off_a_host_that_runs_a_vm() -> None:
    c = cluster(a="h1")
    res = executor(c).execute(plan(PowerOff("h1", "empty?")), "p")
    assert res.outcomes[0].status is Status.SKIPPED
    assert res.outcomes[0].detail == "h1 still runs a"
    assert c.is_on("h1") and c.locate("a") == ["h1"]


def test_powers_off_an_empty_host_after_the_moves() -> None:
    c = cluster(a="h1")
    res = executor(c).execute(plan(Move("a", "h1", "h2", "t"), PowerOff("h1", "empty")), "p")
    assert [o.status for o in res.outcomes] == [Status.DONE, Status.DONE]
    assert not c.is_on("h1") and c.locate("a") == ["h2"]


def test_power_on_waits_for_the_host() -> None:
    c = cluster(a="h1")
    c.powered["h3"] = False
    res = executor(c).execute(plan(PowerOn("h3", "headroom")), "p")
    assert res.outcomes[0].status is Status.DONE and c.is_on("h3")
    assert res.outcomes[0].finished_at - res.outcomes[0].started_at >= c.boot_s


def test_dead_bmc_is_reported() -> None:
    c = cluster(a="h1")
    c.powered["h3"] = False
    c.dead_bmc.add("h3")
    res = executor(c).execute(plan(PowerOn("h3", "headroom")), "p")
    assert res.outcomes[0].status is Status.FAILED
    assert "BMC of h3 does not answer" in res.outcomes[0].detail


def test_recover_after_a_crash_mid_migration() -> None:
    c = cluster(a="h1", b="h1")
    journal = MemoryJournal()
    first = executor(c, journal)
    # The first executor wrote its intent and started the job, then "died".
    entry = journal.intent("p", 1, Move("a", "h1", "h2", "t"))
    journal.update(entry, "started", c.start_migration("a", "h1", "h2", first._options()))
    entry2 = journal.intent("p", 2, Move("b", "h1", "h3", "t"))  # died before starting it
    again = executor(c, journal)
    out = again.recover()
    assert [o.status for o in out] == [Status.DONE, Status.FAILED]
    assert c.locate("a") == ["h2"] and c.locate("b") == ["h1"]
    assert journal.open_entries() == []
    assert journal.entries[entry2].state == "failed"


def test_stopping_starts_nothing_new() -> None:
    c = cluster(a="h1")
    ex = executor(c)
    ex.stopping = True
    res = ex.execute(plan(Move("a", "h1", "h2", "t")), "p")
    assert res.outcomes[0].status is Status.SKIPPED and c.locate("a") == ["h1"]


def test_wake_ups_are_staggered_and_awaited_together() -> None:
    """Three hosts woken in one stage: the calls are `power_stagger_s` apart, the boots
    overlap, so the stage takes about one boot (90 s), not three."""
    c = cluster()
    for h in ("h1", "h2", "h3"):
        c.powered[h] = False
    journal = MemoryJournal()
    limits = Limits(poll_s=1.0, power_timeout_s=300.0, power_stagger_s=10.0)
    ex = Executor(c, c.clock, journal, limits, power={h: c.power(h) for h in ("h1", "h2", "h3")})
    t0 = c.clock.now()
    res = ex.execute(plan(*(PowerOn(h, "office hours") for h in ("h1", "h2", "h3"))), "p")
    assert [o.status for o in res.outcomes] == [Status.DONE] * 3
    assert all(c.is_on(h) for h in ("h1", "h2", "h3"))
    starts = [o.started_at - t0 for o in res.outcomes]
    assert starts == [0.0, 10.0, 20.0]
    assert c.clock.now() - t0 < c.boot_s + 20 + 5  # not 3 x boot_s
    assert all(o.finished_at - o.started_at >= c.boot_s for o in res.outcomes)


def test_a_failed_wake_does_not_hold_up_the_others() -> None:
    c = cluster(a="h1")
    c.powered["h2"] = c.powered["h3"] = False
    c.dead_bmc.add("h2")
    res = executor(c).execute(plan(PowerOn("h2", "x"), PowerOn("h3", "x")), "p")
    assert [o.status for o in res.outcomes] == [Status.FAILED, Status.DONE]
    assert c.is_on("h3") and not c.is_on("h2")
