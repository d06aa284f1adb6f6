"""Operator commands' inputs: one clear line and exit 2 for bad input, nothing written, nothing
silently wrong. Real `ulm` processes against a real SQLite store."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.warm_ulm import warm_ulm
from ulm.store import Store

ROOT = Path(__file__).resolve().parents[1]


def ulm(*args: str) -> subprocess.CompletedProcess[str]:
    # a wide terminal: a table's cells are not wrapped
    return warm_ulm().run(args, cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "200"})


def refused(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one `error: ...` line naming what is wrong, no traceback."""
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def config(tmp: Path, extra: str = "") -> Path:
    path = tmp / "ulm.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp}/ulm.db"\n{extra}' + "".join(
        f'[[hosts]]\nname = "{h}"\nlibvirt_uri = "qemu+tcp://{h}/system"\n'
        for h in ("h1", "h2")))
    return path


def test_maintenance_add_refuses_times_that_are_not_sane(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    for start in ("nan", "-inf", "-1e20", "1999-12-31"):
        out = ulm("maintenance", "add", "-c", str(cfg), "h1", f"--start={start}", "--end",
                  "+1h")
        refused(out, f"--start {start!r}", "out of range")
    assert not (tmp_path / "ulm.db").exists()  # refused before the store was touched


def test_maintenance_add_refuses_a_window_that_is_over(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    refused(ulm("maintenance", "add", "-c", str(cfg), "h1", "--start", "-3h", "--end", "-2h"),
            "--end is in the past")
    refused(ulm("maintenance", "add", "-c", str(cfg), "h1", "--end=nan", "--start", "now"),
            "--end 'nan'")


def test_maintenance_list_shows_bad_rows_of_an_old_store(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    store.book("h1", -1e20, time.time() + 3600, False, "written before times were checked")
    store.book("h2", float("-inf"), float("inf"), False, "worse")
    store.close()
    out = ulm("maintenance", "list", "-c", str(cfg), "--all")
    assert out.returncode == 0, out.stderr
    assert "invalid (-1e+20)" in out.stdout and "invalid (-inf)" in out.stdout
    as_json = ulm("maintenance", "list", "-c", str(cfg), "--all", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert [r["start"] for r in rows] == [None, -1e20]


def energy(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return ulm("report", "energy", "-c", str(cfg), "--format", "json", *args)


def test_energy_report_refuses_bad_and_reversed_windows(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    for bad in ("nan", "inf", "-1e20"):
        refused(energy(cfg, f"--since={bad}"), f"--since {bad!r}")
    refused(energy(cfg, "--since", "-1h", "--until", "-2h"), "not before --until")
    refused(energy(cfg, "--since", "now", "--until", "now"), "window is empty")


def test_energy_report_ends_now_not_in_the_future(tmp_path: Path) -> None:
    from ulm.collect.base import Collection, HostReading
    cfg = config(tmp_path, '[power_models.flat]\nidle_w = 100\nmax_w = 200\n')
    now = time.time()
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    store.add_collection(Collection(now - 1800, (HostReading(
        "h1", now - 1800, True, cores=4, mem_total_mib=4096.0, cpu=0.5, mem_used_mib=1024.0),)))
    store.close()
    ahead = energy(cfg, "--since", "-1h", "--until", "+30d")
    assert ahead.returncode == 0, ahead.stderr
    assert "--until +30d is in the future: the report ends now" in ahead.stderr
    report = json.loads(ahead.stdout)
    assert now <= report["until"] <= time.time()
    assert math.isfinite(report["kwh"]) and 0 < report["kwh"] < 0.2  # half an hour, <= 200 W
    upto_now = json.loads(energy(cfg, "--since", "-1h").stdout)
    assert report["kwh"] == pytest.approx(upto_now["kwh"], rel=0.01)


@pytest.mark.parametrize("args", [["drain", "hv99"], ["undrain", "hv99"],
                                  ["maintenance", "add", "hv99", "--start", "+1h", "--end",
                                   "+2h"]])
def test_unknown_hosts_are_named_against_the_config(tmp_path: Path, args: list[str]) -> None:
    cfg = config(tmp_path)
    out = ulm(*args, "-c", str(cfg))
    refused(out, "unknown host 'hv99'", "(the config has h1, h2)")
    assert not (tmp_path / "ulm.db").exists()  # nothing written, not even an empty store


def test_plan_and_simulate_times_go_through_the_same_parser() -> None:
    snap = "examples/snapshots/hot-host.json"
    refused(ulm("plan", "--snapshot", snap, "--policy", "seed", "--now", "nan"),
            "--now 'nan'", "out of range")
    ok = ulm("plan", "--snapshot", snap, "--policy", "seed", "--now", "+1h", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    refused(ulm("simulate", "--trace", "x.csv.gz", "--start", "inf"), "--start 'inf'")
    refused(ulm("simulate", "--trace", "x.csv.gz", "--boot-s", "nan"), "--boot-s")


def test_energy_accounting_treats_nan_readings_as_missing() -> None:
    from ulm.energy import DEFAULT_CURVE, account
    nan = float("nan")
    report = account(0.0, 7200.0, {"h1": [(0.0, 0.5), (3600.0, nan)]}, [],
                     {"h1": DEFAULT_CURVE}, {"h1": [(0.0, nan, 600.0), (600.0, 300.0, nan)]})
    assert math.isfinite(report.kwh) and math.isfinite(report.saved_kwh)
    assert report.kwh == pytest.approx(2 * 0.215, rel=1e-6)  # 2 h at 50 % CPU: 215 W
    with pytest.raises(ValueError, match="not a forward time span"):
        account(10.0, 0.0, {}, [], {})
