"""On the real lab: the config's host labels and power curve reach `ulm status --format json`
(the daemon records them in the store at start; every snapshot carries them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab.test_daemon_lab import configure, ulm
from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab


def test_config_labels_and_power_curve_reach_ulm_status(clean_lab: Lab,
                                                        tmp_path: Path) -> None:
    cfg = configure(tmp_path, clean_lab)
    text = cfg.read_text()
    assert 'name = "labh1"\n' in text
    text = text.replace('name = "labh1"\n', 'name = "labh1"\npower_curve = "labbox"\n'
                        'labels = { rack = "lab-r1", room = "netns" }\n', 1)
    cfg.write_text(text + '\n[power_models.labbox]\nidle_w = 40\nmax_w = 120\n')
    out = ulm("run", "-c", str(cfg), "--mode", "observe", "--once")
    assert out.returncode == 0, out.stderr
    # `ulm status` judges staleness on the wall clock: with the daemon's 6 s, a loaded machine
    # can take longer to start it. The store is this test's own, so any fresh figure in it is
    # from the round above: 10 minutes proves that as well, whatever the load.
    seen = cfg.with_name("status.toml")
    seen.write_text(cfg.read_text().replace("interval_s = 2\n",
                                            "interval_s = 2\nstale_after_s = 600\n", 1))
    assert "stale_after_s = 600" in seen.read_text()
    status = ulm("status", "-c", str(seen), "--format", "json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert hosts["labh1"]["labels"] == {"rack": "lab-r1", "room": "netns"}
    assert hosts["labh1"]["power"] == "labbox"
    assert hosts["labh1"]["state"] == "on"  # collected for real, labels kept
    assert hosts["labh2"]["labels"] == {} and hosts["labh2"]["power"] == ""
    assert doc["power_curves"] == {"labbox": [40.0, 120.0]}
