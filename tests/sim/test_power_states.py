"""The simulator's power states (`--boot-s`), calendar (`--start`) and consecutive days
(`--chain`): a week's saving is priced with every boot, and hosts are up before office hours."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.sim.conftest import GCD
from ulm.cli import _register, app
from ulm.inputs import BadInput
from ulm.model import PowerOff, PowerOn
from ulm.policy import resolve_policy
from ulm.sim.engine import SimConfig, SimResult, simulate
from ulm.sim.hoststates import OFF, ON, WAKING, HostStates
from ulm.sim.hosttypes import Hosts
from ulm.sim.power import PowerTable
from ulm.sim.traces import INTERVAL_S, Trace, chain, load_trace

MONDAY = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()
HOUR = 3600.0


def gcd(day: int) -> Path:
    path = GCD / f"gcd-day{day:02d}.csv.gz"
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared/traces beside the clone")
    return path


@pytest.fixture(scope="module")
def two_days() -> Trace:
    return chain([load_trace(gcd(1)), load_trace(gcd(2))])


@pytest.fixture(scope="module")
def office(two_days: Trace) -> SimResult:
    return simulate(two_days, resolve_policy("office-hours"),
                    SimConfig(hosts=Hosts.cloudsim(100), start=MONDAY, boot_s=180))


def test_chain_matches_vms_by_name_and_idles_the_missing() -> None:
    a = Trace("d1", "gcd", ("x", "y"), np.full((2, 3), 0.5), np.full((2, 3), 0.2))
    b = Trace("d2", "gcd", ("y", "z"), np.full((2, 3), 0.9), np.full((2, 3), 0.4))
    week = chain([a, b])
    assert week.vm_names == ("x", "y", "z") and week.samples == 6 and week.name == "d1..d2"
    assert week.cpu.tolist() == [[0.5] * 3 + [0.0] * 3, [0.5] * 3 + [0.9] * 3,
                                 [0.0] * 3 + [0.9] * 3]
    assert week.mem is not None and week.mem[2].tolist() == [0.0] * 3 + [0.4] * 3
    no_mem = Trace("p", "planetlab", ("x",), np.ones((1, 3)))
    assert chain([no_mem, no_mem]).mem is None  # PlanetLab days have no memory series
    with pytest.raises(BadInput):  # and cannot be chained with GCD days (tests/sim/test_hostile)
        chain([a, no_mem])


def test_a_night_saves_energy_and_every_host_is_up_before_office_hours(
        office: SimResult) -> None:
    x = office.extra
    assert x["power_offs"] > 0 and x["wake_ups"] > 0
    assert x["refused_power_offs"] == 0  # the scheduler never asked to cut a busy host
    assert x["boot_kwh"] > 0
    assert office.energy_kwh < x["always_on_kwh"] - 10  # a real saving, boots included
    assert x["saved_kwh"] == pytest.approx(x["always_on_kwh"] - office.energy_kwh)
    assert x["host_hours_off"] > 100
    # replay the power events: at 08:00 on Monday and Tuesday no host is off or booting
    events = x["power_events"]
    for day in (0, 1):
        opening = MONDAY + day * 24 * HOUR + 8 * HOUR
        state: dict[str, tuple[float, str]] = {}
        for t, host, what in events:
            if t <= opening:
                state[host] = (t, what)
        dark = {h for h, (t, what) in state.items()
                if what == "off" or (what == "on" and t + 180 > opening)}
        assert not dark, f"hosts still dark at office start of day {day}: {sorted(dark)[:5]}"
        woken = [t for t, _, what in events
                 if what == "on" and opening - 1800 <= t < opening]
        assert woken, "nothing was woken ahead of office hours"
    # and nothing is powered off during office hours or the wake-up lead before them
    for t, _, what in events:
        local = dt.datetime.fromtimestamp(t, dt.UTC)
        if what == "off" and local.weekday() < 5:
            assert not (7.5 <= local.hour + local.minute / 60 < 18), local


def test_the_same_run_without_power_off_saves_nothing(two_days: Trace) -> None:
    pol = resolve_policy("office-hours")
    night = dict(pol.night or {})
    night["consolidation"] = {**night["consolidation"], "power_off": False}
    res = simulate(two_days, pol.model_copy(update={"night": night}),
                   SimConfig(hosts=Hosts.cloudsim(100), start=MONDAY, boot_s=180))
    assert res.extra["power_offs"] == 0 and res.extra["wake_ups"] == 0
    assert res.energy_kwh == pytest.approx(res.extra["always_on_kwh"])


def test_slower_boots_cost_more(two_days: Trace, office: SimResult) -> None:
    slow = simulate(two_days, resolve_policy("office-hours"),
                    SimConfig(hosts=Hosts.cloudsim(100), start=MONDAY, boot_s=900))
    assert slow.extra["boot_kwh"] > office.extra["boot_kwh"]


def test_a_busy_host_is_never_powered_off() -> None:
    st = HostStates(3, boot_s=60)
    vms = np.array([1, 0, 0])
    busy = np.array([False, True, False])
    offs = [PowerOff(h, "test") for h in ("h0", "h1", "h2")]
    st.apply(offs, {"h0": 0, "h1": 1, "h2": 2}, 100.0, vms, busy)
    assert st.state.tolist() == [ON, ON, OFF] and st.refused == 2 and st.power_offs == 1
    st.apply([PowerOn("h2", "test")], {"h2": 2}, 200.0, vms, busy)
    assert st.state[2] == WAKING and st.wake_ups == 1
    st.tick(259.0, vms)
    assert st.state[2] == WAKING
    st.tick(260.0, vms)
    assert st.state[2] == ON and st.on_since[2] == 260.0


def test_a_boot_is_charged_at_full_power_then_idle() -> None:
    hosts = Hosts.cloudsim(2)
    table = PowerTable(hosts.curves)
    st = HostStates(2, boot_s=100)
    st.apply([PowerOff("a", "test")], {"a": 0}, 0.0, np.zeros(2, np.int64), np.zeros(2, np.bool_))
    st.apply([PowerOn("a", "test")], {"a": 0}, 0.0, np.zeros(2, np.int64), np.zeros(2, np.bool_))
    st.account(0.0, INTERVAL_S, hosts.kind, table)
    k = hosts.kind[:1]
    full, idle = float(table.max_watts(k)[0]), float(table.idle_watts(k)[0])
    assert st.boot_j == pytest.approx(full * 100 + idle * 200)
    assert st.idle_if_on_j == pytest.approx(idle * INTERVAL_S)
    assert st.off_s == pytest.approx(100)


def test_cli_week_json_and_clear_errors(tmp_path: Path) -> None:
    _register()
    run = CliRunner().invoke
    args = ["simulate", "--trace", str(gcd(1)), "--trace", str(gcd(2)), "--chain",
            "--policy", "office-hours", "--hosts", "100", "--boot-s", "120",
            "--start", "2026-11-30", "--format", "json"]
    res = run(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert len(rows) == 1 and rows[0]["trace"] == "gcd-day01..gcd-day02"
    for key in ("always_on_kwh", "saved_kwh", "boot_kwh", "host_hours_off", "power_offs",
                "wake_ups", "night_slatah"):
        assert key in rows[0], key
    no_start = [a for a in args if a not in ("--start", "2026-11-30")]
    res = run(app, no_start)
    assert res.exit_code == 2 and "has a calendar" in res.output and "--start" in res.output
    res = run(app, [*args[:-4], "--start", "next monday", "--format", "json"])
    assert res.exit_code == 2 and "--start 'next monday'" in res.output
    res = run(app, ["simulate", "--trace", str(gcd(1)), "--cloudsim-compat", "--boot-s", "60"])
    assert res.exit_code == 2 and "--boot-s" in res.output
