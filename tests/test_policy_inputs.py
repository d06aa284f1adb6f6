"""Hostile policies and calendars: every float finite, times real, freezes orderable, and a
built-in name always the built-in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_policy import run_ulm
from ulm.errors import ConfigError
from ulm.inputs import BadInput
from ulm.numbers import MAX_TOML_BYTES
from ulm.policy import builtin_names, parse_policy, resolve_policy

CAL = '[calendar]\ntimezone = "Europe/Berlin"\n'


@pytest.mark.parametrize(("text", "key"), [
    ("[overload]\nthreshold = nan\n", "overload.threshold"),
    ("[overload]\nmigration_interval_s = inf\n", "overload.migration_interval_s"),
    ("[overload]\nmigration_mib_per_s = 1e-300\n", "overload.migration_mib_per_s"),
    ("[gates]\ncooldown_s = inf\n", "gates.cooldown_s"),
    ("[gates]\nmax_moves_per_round = 99999999999999999999999\n", "gates.max_moves_per_round"),
    ("[consolidation]\nsettle_s = 1e300\n", "consolidation.settle_s"),
    ("[consolidation]\nreserve_hosts = 10000000000\n", "consolidation.reserve_hosts"),
    ("[placement]\ncpu_overcommit = nan\n", "placement.cpu_overcommit"),
    ("[selection]\nseed = -1\n", "selection.seed"),
    ("[demand]\npercentile = nan\n", "demand.percentile"),
    (CAL + "wake_lead_s = nan\n", "calendar.wake_lead_s"),
    ('name = "\\u001b[31mred"\n', "name"),
])
def test_non_finite_or_absurd_numbers_and_names_are_refused(text: str, key: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_policy(text, "p.toml")
    assert err.value.key == key and err.value.line is not None


def test_a_nan_in_an_office_override_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"office\.overload\.threshold"):
        parse_policy(CAL + "[office.overload]\nthreshold = nan\n", "p.toml")


@pytest.mark.parametrize("span", ["08:00-24:59", "08:00-24:01", "24:00-24:00", "08:60-18:00",
                                  "08:00-18:60", "25:00-26:00", "18:00-08:00"])
def test_impossible_office_hours_are_refused(span: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_policy(CAL + f'office_hours = {{ mon = "{span}" }}\n', "p.toml")
    assert err.value.key == "calendar.office_hours"


def test_24_00_is_the_end_of_the_day() -> None:
    import datetime as dt

    pol = parse_policy(CAL + 'office_hours = { mon = "20:00-24:00" }\n', "p.toml")
    assert pol.calendar is not None
    span = pol.calendar.office_span(dt.date(2026, 11, 30))  # a Monday
    assert span is not None and span[1] - span[0] == dt.timedelta(hours=4)


def test_a_freeze_mixing_naive_and_aware_times_is_refused_clearly() -> None:
    text = CAL + ("freezes = [{ start = 2026-12-24T00:00:00, "
                  "end = 2026-12-27T00:00:00+01:00 }]\n")
    with pytest.raises(BadInput) as err:
        parse_policy(text, "p.toml")
    assert err.value.key.startswith("calendar.freezes") and "UTC offset" in err.value.problem


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)


def test_a_file_named_like_a_builtin_never_replaces_it(in_tmp: Path) -> None:
    (in_tmp / "seed").write_text('name = "impostor"\n')
    (in_tmp / "ulm").mkdir()
    assert resolve_policy("seed").name != "impostor"
    assert resolve_policy("seed") == resolve_policy("seed")
    assert resolve_policy("ulm").name == "ulm"
    assert resolve_policy("./seed").name == "impostor"  # a path says so


def test_cli_builtin_name_beats_a_file_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "seed").write_text('name = "impostor"\n')
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "ulm", "policy", "check", "seed"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "impostor" not in out.stdout


def test_an_unknown_bare_name_lists_the_builtins_and_hints_at_a_file(in_tmp: Path) -> None:
    (in_tmp / "mine").write_text("")
    with pytest.raises(ConfigError) as err:
        resolve_policy("mine")
    assert all(n in str(err.value) for n in builtin_names())
    assert "./mine" in str(err.value)


def test_a_huge_policy_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("# " + "x" * MAX_TOML_BYTES)
    with pytest.raises(BadInput) as err:
        resolve_policy(str(path))
    assert err.value.kind == "too_large"


def test_deeply_nested_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("x = " + "[" * 100_000)
    out = run_ulm("policy", "check", str(path))
    assert out.returncode == 2 and "nested too deeply" in out.stderr
    assert "Traceback" not in out.stderr
