"""Short simulations on real data: compat migrates, honest keeps VMs and RAM; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from tests.sim.conftest import cut, write_cut
from ulm.cli import _register, app
from ulm.clock import SimClock
from ulm.drivers.base import MigrationOptions, MigrationState
from ulm.policy import resolve_policy
from ulm.sim.cluster import ArrayCluster
from ulm.sim.engine import SimConfig, simulate
from ulm.sim.traces import Trace

KEYS = {"trace", "policy", "mode", "vms", "energy_kwh", "migrations", "slatah", "pdm", "slav",
        "esv", "host_shutdowns", "wall_s", "lower_bound_kwh"}


def test_short_compat_thr_mmt_run_migrates_with_sane_slatah(day0303: Trace) -> None:
    r = simulate(cut(day0303, 1052, 49), resolve_policy("thr-mmt-0.8"),
                 SimConfig(mode="compat"))
    assert r.migrations > 100
    assert 0.01 < r.slatah < 0.2  # CloudSim's day: 4.91 %
    assert 0 < r.pdm < 0.01
    assert r.vms_end < r.vms  # idle VMs deleted, as CloudSim does


def test_honest_mode_keeps_all_vms_and_never_overfills_ram(day0303: Trace) -> None:
    for name in ("thr-mmt-0.8", "ulm"):
        r = simulate(cut(day0303, 1052, 49), resolve_policy(name), SimConfig(mode="honest"))
        assert r.vms_end == r.vms == 1052
        assert r.migrations > 0
        assert 0.9 < r.extra["peak_host_ram"] <= 1.0  # packed by RAM, never beyond it


def test_compat_ignores_ram_after_t0(day0303: Trace) -> None:
    r = simulate(cut(day0303, 1052, 49), resolve_policy("thr-mmt-0.8"),
                 SimConfig(mode="compat"))
    assert r.extra["peak_host_ram"] > 1.0  # CloudSim packs by CPU only


def test_array_cluster_speaks_the_hypervisor_protocol() -> None:
    clock = SimClock(0.0)
    c = ArrayCluster(clock, ("a", "b"), ("h0", "h1"), np.array([0, 0]), np.array([625.0, 62.5]),
                     np.array([62.5, 62.5]))
    job = c.start_migration("a", "h0", "h1", MigrationOptions())
    assert c.locate("a") == ["h0", "h1"]  # running on the source, accounted on both
    assert c.poll(job).state is MigrationState.RUNNING
    clock.sleep(10.0)
    assert c.poll(job).state is MigrationState.COMPLETED
    assert c.list_vms("h1") == ["a"] and c.locate("a") == ["h1"] and c.migrations == 1


def _cli(*args: str) -> object:
    _register()
    return CliRunner().invoke(app, list(args))


def test_cli_json_has_every_key(tmp_path: Path) -> None:
    path = write_cut(tmp_path, "20110306", 200)
    out = _cli("simulate", "--trace", str(path), "--trace", str(path), "--policy",
               "lr-mmt-1.2", "--cloudsim-compat", "--format", "json")
    assert out.exit_code == 0, out.output  # type: ignore[attr-defined]
    lines = out.output.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 2  # one object per trace
    for line in lines:
        row = json.loads(line)
        assert row.keys() >= KEYS
        assert row["mode"] == "compat" and row["vms"] == 200 and row["migrations"] > 0
        assert 0 <= row["slatah"] < 1 and row["esv"] == row["energy_kwh"] * row["slav"]


def test_cli_table_by_default(tmp_path: Path) -> None:
    path = write_cut(tmp_path, "20110306", 100)
    out = _cli("simulate", "--trace", str(path), "--policy", "dvfs")
    assert out.exit_code == 0
    assert "energy kWh" in out.output and "honest" in out.output  # type: ignore[attr-defined]


def test_cli_bad_trace_one_line_exit_2(tmp_path: Path) -> None:
    good = write_cut(tmp_path, "20110306", 50)
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip at all")
    out = _cli("simulate", "--trace", str(good), "--trace", str(bad), "--format", "json")
    assert out.exit_code == 2  # type: ignore[attr-defined]
    text = out.output.strip()  # type: ignore[attr-defined]
    assert len(text.splitlines()) == 1 and "bad.csv.gz" in text and "gzip" in text
    assert "Traceback" not in text and "{" not in text  # nothing half-written
