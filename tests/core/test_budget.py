"""The day's migration budget (`[gates] max_migrations_per_day`): validated at the edge, the
day in the calendar's timezone, every move but a maintenance drain's capped, and what the
spent budget leaves undone said as a problem and in the explain rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from tests.builders import SEED, host, policy, snap, vm
from ulm.budget import day_budget, day_start
from ulm.errors import ConfigError
from ulm.model import HostState, Move
from ulm.problems import ProblemKind
from ulm.scheduler import check_drain, schedule
from ulm.snapshot_json import load_snapshot, snapshot_to_dict

HOSTS = [host(f"h{i}") for i in range(1, 6)]
# h1 and h2 at 7/8 = 87.5 %: each needs one VM to leave
HOT = [vm("a1", "h1", 3.5), vm("a2", "h1", 3.5), vm("b1", "h2", 3.5), vm("b2", "h2", 3.5)]
DAY = 1_764_633_600.0  # 2025-12-02 00:00 UTC


def budget(n: int, extra: str = "") -> str:
    return SEED + f"[gates]\nmax_migrations_per_day = {n}\n{extra}"


def moves(plan: object) -> list[Move]:
    return [a for a in plan.actions if isinstance(a, Move)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["-1", "1000001", "2.5", '"ten"', "nan"])
def test_a_budget_that_cannot_be_right_is_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match="max_migrations_per_day"):
        policy(f"[gates]\nmax_migrations_per_day = {value}\n")


def test_no_budget_by_default_and_zero_is_a_budget() -> None:
    assert policy().gates.max_migrations_per_day is None
    assert policy("[gates]\nmax_migrations_per_day = 0\n").gates.max_migrations_per_day == 0


def test_the_day_begins_at_midnight_in_the_calendars_timezone() -> None:
    assert day_start(policy(), DAY + 3600) == DAY  # no calendar: UTC
    berlin = policy('[calendar]\ntimezone = "Europe/Berlin"\n')
    # 00:30 in Berlin on 2 December is 23:30 UTC on 1 December: Berlin's day began at 23:00 UTC
    assert day_start(berlin, DAY - 1800) == DAY - 3600
    assert day_start(berlin, DAY - 3601) == DAY - 3600 - 86400
    # a day with a DST change is 23 hours long (Berlin, 29 March 2026)
    start = dt.datetime(2026, 3, 29, 12, tzinfo=dt.UTC).timestamp()
    nxt = dt.datetime(2026, 3, 30, 12, tzinfo=dt.UTC).timestamp()
    assert day_start(berlin, nxt) - day_start(berlin, start) == 23 * 3600


def test_relief_plans_no_more_than_the_day_has_left() -> None:
    s = dataclasses.replace(snap(HOSTS, HOT, at=DAY + 3600), migrations_today=9)
    plan = schedule(s, policy(budget(10)), DAY + 3600)
    assert len(moves(plan)) == 1
    day = [p for p in plan.issues if p.kind is ProblemKind.DAY_BUDGET]
    assert len(day) == 1 and day[0].limit == 10 and day[0].used == 10
    assert "migration budget of the day used up (10 of 10 started today)" in plan.problems[0]
    kept = [d for d in plan.decisions if d.outcome == "kept: today's migration budget used up"]
    assert len(kept) == 1 and kept[0].host in ("h1", "h2")
    # without the budget both hosts are relieved
    assert len(moves(schedule(s, policy(SEED), DAY + 3600))) == 2


def test_a_spent_budget_moves_nothing_and_a_new_day_starts_afresh() -> None:
    s = dataclasses.replace(snap(HOSTS, HOT, at=DAY - 60), migrations_today=10)
    assert moves(schedule(s, policy(budget(10)), DAY - 60)) == []
    # the same snapshot's count is yesterday's for a plan made after midnight
    assert len(moves(schedule(s, policy(budget(10)), DAY + 60))) == 2
    assert day_budget(policy(budget(10)), policy(budget(10)), DAY - 60, 10, DAY + 60).left == 10


def test_the_round_budget_still_says_its_own_problem() -> None:
    s = dataclasses.replace(snap(HOSTS, HOT, at=DAY), migrations_today=0)
    plan = schedule(s, policy(budget(10, "max_moves_per_round = 1\n")), DAY)
    assert len(moves(plan)) == 1
    assert [p.kind for p in plan.issues] == [ProblemKind.BUDGET]
    assert any(d.outcome == "kept: move budget used up" for d in plan.decisions)


def test_office_and_night_profiles_have_their_own_budget_over_one_day_count() -> None:
    text = budget(10) + ('[calendar]\ntimezone = "UTC"\noffice_hours = { mon = "08:00-18:00", '
                         'tue = "08:00-18:00" }\n[office.gates]\nmax_migrations_per_day = 3\n')
    s = dataclasses.replace(snap(HOSTS, HOT, at=DAY + 9 * 3600), migrations_today=3)
    assert moves(schedule(s, policy(text), DAY + 9 * 3600)) == []  # office: 3 a day, 3 used
    night = dataclasses.replace(s, taken_at=DAY + 20 * 3600)
    assert len(moves(schedule(night, policy(text), DAY + 20 * 3600))) == 2  # 10 a day


def _maintenance() -> list[object]:
    hosts = [dataclasses.replace(HOSTS[0], state=HostState.MAINTENANCE), *HOSTS[1:]]
    return hosts


def test_a_maintenance_drain_goes_past_the_budget_counts_and_says_so() -> None:
    vms = [vm("m1", "h1", 0.5), vm("m2", "h1", 0.5), vm("m3", "h1", 0.5),
           vm("b1", "h2", 3.5), vm("b2", "h2", 3.5)]
    s = dataclasses.replace(snap(_maintenance(), vms, at=DAY), migrations_today=8)
    plan = schedule(s, policy(budget(10, "max_moves_per_round = 2\n")), DAY)
    drained = [m for m in moves(plan) if m.src == "h1"]
    assert len(drained) == 3  # past the day's 2 left and the round's 2: never held back
    assert [m for m in moves(plan) if m.src == "h2"] == []  # the budget is gone for relief
    kinds = [p.kind for p in plan.issues]
    assert ProblemKind.DRAIN_PAST_BUDGET in kinds and ProblemKind.DAY_BUDGET in kinds
    past = next(p for p in plan.issues if p.kind is ProblemKind.DRAIN_PAST_BUDGET)
    assert past.host == "h1" and past.used == 11 and past.limit == 10
    assert "never held back" in str(past)


def test_booking_time_says_early_that_a_drain_goes_past_the_budget() -> None:
    vms = [vm(f"m{i}", "h1", 0.2, mem=512) for i in range(4)]
    s = dataclasses.replace(snap(HOSTS, vms, at=DAY + 3600), migrations_today=8)
    report = check_drain(s, policy(budget(10)), "h1", DAY + 3600)
    assert report.fits and report.past_budget == 2
    assert "2 move(s) past the day's migration budget (8 of 10 used)" in report.summary()
    # due tomorrow: tomorrow's whole budget is left
    later = check_drain(s, policy(budget(10)), "h1", DAY + 3600, at=DAY + 86400 + 3600)
    assert later.fits and later.past_budget == 0 and "budget" not in later.summary()
    assert check_drain(s, policy(budget(3)), "h1", DAY + 3600,
                       at=DAY + 86400 + 3600).past_budget == 1


def test_consolidation_left_undone_by_the_budget_is_a_problem_and_a_row() -> None:
    text = budget(5, "") + "[consolidation]\nenabled = true\nunderload_threshold = 0.5\n"
    vms = [vm("q1", "h1", 0.5), vm("q2", "h2", 0.5)]
    s = dataclasses.replace(snap(HOSTS[:2], vms, at=DAY), migrations_today=5)
    plan = schedule(s, policy(text), DAY)
    assert moves(plan) == []
    assert [p.kind for p in plan.issues] == [ProblemKind.DAY_BUDGET]
    assert "consolidation of h" in plan.problems[0]
    rows = [d for d in plan.decisions if d.outcome == "kept: today's migration budget used up"]
    assert rows and rows[0].trigger.startswith("consolidation: ")
    fresh = dataclasses.replace(s, migrations_today=0)
    assert len(moves(schedule(fresh, policy(text), DAY))) == 1


def test_the_snapshot_file_carries_the_count(tmp_path: Path) -> None:
    s = dataclasses.replace(snap(HOSTS, HOT, at=DAY), migrations_today=9)
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot_to_dict(s)))
    back = load_snapshot(path)
    assert back.migrations_today == 9
    assert len(moves(schedule(back, policy(budget(10)), DAY))) == 1
    assert back.id != dataclasses.replace(back, migrations_today=0).id


def test_moves_queued_by_an_earlier_plan_count_as_todays() -> None:
    from ulm.budget import queued
    from ulm.execute.holds import Holds

    holds = Holds()
    earlier = [Move("a1", "h1", "h3", "test", 2048.0), Move("b1", "h2", "h4", "test", 2048.0)]
    holds.take("p-earlier", earlier)
    holds.start("p-earlier", earlier[0])  # in flight: the journal counts it already
    s = queued(dataclasses.replace(snap(HOSTS, HOT, at=DAY), migrations_today=8), holds)
    assert s.migrations_today == 9  # the one not started yet joins the count
    assert len(moves(schedule(s, policy(budget(10)), DAY))) == 1
    holds.release_plan("p-earlier")
    assert queued(s, holds) is s


def test_a_host_that_needs_more_moves_than_are_left_waits_and_says_so() -> None:
    text = budget(5) + "[consolidation]\nenabled = true\nunderload_threshold = 0.5\n"
    vms = [vm("q1", "h1", 0.2), vm("q2", "h1", 0.2), vm("q3", "h1", 0.2), vm("big", "h2", 2.0)]
    s = dataclasses.replace(snap(HOSTS[:2], vms, at=DAY), migrations_today=3)
    plan = schedule(s, policy(text), DAY)  # emptying h1 takes 3 moves; 2 are left
    assert moves(plan) == []
    assert "migration budget of the day too small for it (3 of 5 started today)" in \
        plan.problems[0]
    assert any(d.host == "h1" and d.outcome == "kept: too little of today's migration budget "
               "left" for d in plan.decisions)
