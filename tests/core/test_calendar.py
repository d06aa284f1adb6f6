"""Calendar periods and profiles: office hours, the morning wake, nights, holidays, freezes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.builders import host, policy, snap, vm
from ulm.calendar import Period
from ulm.errors import ConfigError
from ulm.model import HostState, Move, PowerOff, PowerOn
from ulm.policy import load_policy
from ulm.scheduler import schedule

BERLIN = ZoneInfo("Europe/Berlin")
CAL = """
[calendar]
timezone = "Europe/Berlin"
holidays = [2026-12-25]
freezes = [{ start = 2026-12-28T00:00:00, end = 2026-12-29T00:00:00, reason = "year end" }]
wake_lead_s = 1800

[calendar.office_hours]
mon = "07:00-19:00"
tue = "07:00-19:00"
wed = "07:00-19:00"
thu = "07:00-19:00"
fri = "07:00-17:00"

[night.consolidation]
enabled = true
reserve_hosts = 0
"""


def at(*args: int) -> float:
    return dt.datetime(*args, tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at(2026, 11, 25, 10, 0), Period.OFFICE),  # Wednesday morning
        (at(2026, 11, 25, 6, 45), Period.PRE_OFFICE),  # 15 min before 07:00
        (at(2026, 11, 25, 6, 29), Period.NIGHT),  # before the lead time
        (at(2026, 11, 25, 19, 0), Period.NIGHT),  # the end is exclusive
        (at(2026, 11, 27, 18, 0), Period.NIGHT),  # Friday ends at 17:00
        (at(2026, 11, 28, 12, 0), Period.NIGHT),  # Saturday
        (at(2026, 11, 29, 23, 50), Period.NIGHT),  # Sunday night: Monday 07:00 is far
        (at(2026, 11, 30, 6, 31), Period.PRE_OFFICE),  # Monday morning
        (at(2026, 12, 25, 10, 0), Period.NIGHT),  # a holiday
        (at(2026, 3, 30, 6, 45), Period.PRE_OFFICE),  # the Monday after the DST change
    ],
)
def test_periods(moment: float, expected: Period) -> None:
    pol = policy(CAL)
    assert pol.calendar is not None and pol.calendar.period(moment) is expected


def test_profiles_override_the_base() -> None:
    pol = policy(CAL)
    night, period, _ = pol.effective(at(2026, 11, 25, 23, 0))
    assert period is Period.NIGHT and night.consolidation.enabled
    office, period, _ = pol.effective(at(2026, 11, 25, 10, 0))
    assert period is Period.OFFICE and not office.consolidation.enabled
    assert night.overload == office.overload == pol.overload


HOSTS = [host("h1"), host("h2"), host("h3"), host("h4", state=HostState.OFF)]
QUIET = [vm("a", "h1", 1.0), vm("b", "h2", 0.5), vm("c", "h3", 0.5)]


def kinds(actions: tuple[object, ...]) -> set[type]:
    return {type(a) for a in actions}


def test_night_packs_and_powers_off() -> None:
    plan = schedule(snap(HOSTS, QUIET), policy(CAL), at(2026, 11, 25, 23, 0))
    assert Move in kinds(plan.actions) and PowerOff in kinds(plan.actions)


def test_office_hours_do_not_pack() -> None:
    plan = schedule(snap(HOSTS, QUIET), policy(CAL), at(2026, 11, 25, 10, 0))
    assert plan.actions == ()


def test_morning_wakes_every_sleeping_host_and_packs_nothing() -> None:
    plan = schedule(snap(HOSTS, QUIET), policy(CAL), at(2026, 11, 25, 6, 40))
    assert [a.host for a in plan.actions if isinstance(a, PowerOn)] == ["h4"]
    assert Move not in kinds(plan.actions) and PowerOff not in kinds(plan.actions)


def test_freeze_stops_packing_but_not_relief() -> None:
    moment = at(2026, 12, 28, 23, 0)  # a Monday night inside the freeze
    plan = schedule(snap(HOSTS, QUIET), policy(CAL), moment)
    assert plan.actions == ()
    assert any("change freeze" in p and "year end" in p for p in plan.problems)
    hot = [vm("x", "h1", 4.0), vm("y", "h1", 3.5)]
    relief = schedule(snap(HOSTS, hot), policy(CAL + "[overload]\nsustain = 1\nwindow = 1\n"),
                      moment)
    assert [type(a) for a in relief.actions] == [Move]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[calendar]\ntimezone = "Mars/Olympus"\n', "unknown timezone 'Mars/Olympus'"),
        ('[calendar]\noffice_hours = { mon = "9-5" }\n', "mon = '9-5' is not a span"),
        ('[calendar]\noffice_hours = { monday = "08:00-17:00" }\n', "unknown weekday 'monday'"),
        ('[night.consolidation]\nenabled = true\n', "[night] needs a [calendar]"),
        ('[calendar]\n[night.consolidation]\nenabeld = true\n',
         "night.consolidation.enabeld: unknown key"),
        ('[calendar]\n[office.overload]\nthreshold = 2\n',
         "office.overload.threshold: Input should be less than or equal to 1"),
    ],
)
def test_bad_calendar(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(extra)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert message in str(err.value) and str(path) in str(err.value)
