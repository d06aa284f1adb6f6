"""Energy accounting: hand-computed kWh for a host that was on, then off, then on."""

from __future__ import annotations

import pytest

from ulm.energy import DEFAULT_CURVE, account, watts
from ulm.model import PowerCurve

FLAT = PowerCurve("flat", (100.0, 200.0))  # 100 W idle, 200 W at 100 %


def test_on_off_on() -> None:
    # h1: 50 % for the whole day; h2: 50 % for 6 h, off for 12 h, 50 % again for 6 h.
    day = 86400.0
    samples = {"h1": [(0.0, 0.5)], "h2": [(0.0, 0.5), (18 * 3600.0, 0.5)]}
    events = [(6 * 3600.0, "h2", "off"), (18 * 3600.0, "h2", "on")]
    r = account(0.0, day, samples, events, {"h1": FLAT, "h2": FLAT})
    h1, h2 = r.hosts
    assert h1.kwh == pytest.approx(150 * 24 / 1000)  # 3.6 kWh
    assert h2.kwh == pytest.approx(150 * 12 / 1000)  # 1.8 kWh: nothing while off
    assert h2.always_on_kwh == pytest.approx((150 * 12 + 100 * 12) / 1000)  # idle while off
    assert h2.hours_off == pytest.approx(12.0) and h2.power_cycles == 1
    assert r.saved_kwh == pytest.approx(1.2)
    assert r.to_dict()["saved_kwh"] == 1.2


def test_still_off_at_the_end_and_default_curve() -> None:
    r = account(0.0, 3600.0, {"h": [(0.0, 0.0)]}, [(1800.0, "h", "off")], {})
    (h,) = r.hosts
    assert h.kwh == pytest.approx(watts(DEFAULT_CURVE, 0.0) * 0.5 / 1000)
    assert h.hours_off == pytest.approx(0.5)


def test_curve_interpolates_specpower_points() -> None:
    g4 = PowerCurve("g4", (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117))
    assert watts(g4, 0.25) == pytest.approx((92.6 + 96) / 2)
    assert watts(g4, 1.5) == 117


def test_bmc_readings_replace_the_model_where_they_cover_the_time() -> None:
    """h2 as above, but its BMC metered 180 W for the first 6 hours (the model says 150) and
    8 W of standby while it was off; after that, no readings: the model again."""
    day, hour = 86400.0, 3600.0
    samples = {"h2": [(0.0, 0.5), (18 * hour, 0.5)]}
    events = [(6 * hour, "h2", "off"), (18 * hour, "h2", "on")]
    readings = {"h2": [(0.0, 180.0, 6 * hour), (6 * hour, 8.0, 12 * hour)]}
    (h2,) = account(0.0, day, samples, events, {"h2": FLAT}, readings).hosts
    assert h2.kwh == pytest.approx((180 * 6 + 8 * 12 + 150 * 6) / 1000)
    # always on: the metered draw while on, idle (not standby) while it was off
    assert h2.always_on_kwh == pytest.approx((180 * 6 + 100 * 12 + 150 * 6) / 1000)
    assert h2.metered_hours == pytest.approx(18.0)
    (model,) = account(0.0, day, samples, events, {"h2": FLAT}).hosts
    assert model.metered_hours == 0 and model.kwh == pytest.approx(1.8)


def test_a_reading_holds_only_for_its_span() -> None:
    samples = {"h": [(0.0, 0.0)]}
    readings = {"h": [(0.0, 300.0, 600.0)]}  # one reading, good for ten minutes
    (h,) = account(0.0, 3600.0, samples, [], {"h": FLAT}, readings).hosts
    assert h.kwh == pytest.approx((300 * 600 + 100 * 3000) / 3.6e6)
    assert h.metered_hours == pytest.approx(600 / 3600)
