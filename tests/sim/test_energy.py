"""Power curves, NPA and DVFS energy against CloudSim, the deletion rule, the lower bound."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.conftest import DAYS, cut, planetlab
from ulm.policy import resolve_policy
from ulm.sim.engine import SimConfig, simulate
from ulm.sim.hosttypes import G4, G5, Hosts, vm_mips, vm_ram
from ulm.sim.lowerbound import LowerBound
from ulm.sim.power import PowerTable
from ulm.sim.traces import Trace, load_trace

# CloudSim 3.0.3's DVFS energy per day (kWh), ../shared/reference/cloudsim.md section 3
DVFS_KWH = {"20110303": 802.75, "20110306": 625.53, "20110309": 704.93, "20110322": 1011.14,
            "20110325": 789.25, "20110403": 1070.46}


@pytest.mark.parametrize(("curve", "util", "watts"), [
    (G4, 0.0, 86.0), (G4, 0.1, 89.4), (G4, 0.5, 102.0), (G4, 0.55, 104.0), (G4, 1.0, 117.0),
    (G4, 0.95, 115.5), (G5, 0.0, 93.7), (G5, 0.05, 95.35), (G5, 0.37, 108.5),
    (G5, 0.9, 133.0), (G5, 1.0, 135.0), (G5, 1.2, 135.0),
])
def test_specpower_interpolation(curve: object, util: float, watts: float) -> None:
    table = PowerTable((G4, G5))
    kind = 0 if curve is G4 else 1
    assert table.watts(np.array([kind]), np.array([util]))[0] == pytest.approx(watts)


def test_cloudsim_vm_types_are_assigned_by_quarters() -> None:
    assert vm_mips(10).tolist() == [2500] * 3 + [2000] * 3 + [1000] * 3 + [500]
    assert vm_ram(8).tolist() == [870, 870, 1740, 1740, 1740, 1740, 613, 613]
    hosts = Hosts.cloudsim()
    assert hosts.mips[:2].tolist() == [3720.0, 5320.0] and hosts.n == 800


def test_npa_matches_cloudsim_exactly(day0303: Trace) -> None:
    # 800 hosts x (117 + 135) / 2 W x 86,100 s: CloudSim's first 300 s are not accounted
    r = simulate(day0303, resolve_policy("npa"), SimConfig(mode="compat"))
    assert round(r.energy_kwh, 2) == 2410.80
    assert r.migrations == 0


@pytest.mark.parametrize("day", DAYS)
def test_dvfs_within_half_a_percent_of_cloudsim(day: str) -> None:
    r = simulate(load_trace(planetlab(day)), resolve_policy("dvfs"), SimConfig(mode="compat"))
    assert r.energy_kwh == pytest.approx(DVFS_KWH[day], rel=0.005)
    assert r.migrations == 0


def test_deletion_rule_leaves_521_vms_on_20110303(day0303: Trace) -> None:
    r = simulate(day0303, resolve_policy("dvfs"), SimConfig(mode="compat"))
    assert r.vms == 1052 and r.vms_end == 521  # CloudSim issue #64


def test_honest_mode_keeps_every_vm(day0303: Trace) -> None:
    r = simulate(day0303, resolve_policy("dvfs"), SimConfig(mode="honest"))
    assert r.vms_end == r.vms == 1052
    assert r.energy_kwh > 802.75  # the idle VMs CloudSim deletes still need their hosts


def test_lower_bound_fills_the_most_efficient_hosts_first() -> None:
    hosts = Hosts.cloudsim()
    lb = LowerBound(hosts, PowerTable(hosts.curves))
    assert lb.cpu_watts(5320.0) == pytest.approx(135.0)  # one G5 at 100 %
    assert lb.cpu_watts(400 * 5320 + 3720) == pytest.approx(400 * 135 + 117)
    # RAM for 10 hosts: ten idle hosts at least, whatever the CPU demand
    assert lb.watts(1000.0, 10 * 4096.0) >= 10 * 86.0


@pytest.mark.parametrize("mode", ["compat", "honest"])
def test_lower_bound_is_below_every_policy(day0303: Trace, mode: str) -> None:
    short = cut(day0303, 300, 60)
    bounds, energies = set(), {}
    for name in ("npa", "dvfs", "thr-mmt-0.8", "lr-mmt-1.2", "seed", "ulm"):
        r = simulate(short, resolve_policy(name), SimConfig(mode=mode))
        energies[name] = r.energy_kwh
        bounds.add(round(r.lower_bound_kwh, 9))
    assert len(bounds) == 1  # the bound depends on the load, not on the policy
    bound = bounds.pop()
    assert 0 < bound <= min(energies.values()), energies
