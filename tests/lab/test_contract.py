"""Contract: one scenario through the daemon's round on `SimCluster` and on the real lab gives
the same plan. This keeps the simulator honest: it runs the same round, not a second scheduler.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.test_daemon_lab import ULM, configure
from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import load_config
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits
from ulm.lab.lab import Lab, exec_prefix
from ulm.policy import resolve_policy
from ulm.store import Store

pytestmark = pytest.mark.lab

# The scenario: labh1 reports 90 % CPU and runs a busy guest and an idle one.
PLACEMENT = {"hungry": "labh1", "quiet": "labh1"}
MEM = {"hungry": 128.0, "quiet": 64.0}


def sim_plan(cfg_path: Path, tmp: Path) -> list[tuple[str, str, str]]:
    real = load_config(cfg_path)
    cfg = real.model_copy(update={"store": real.store.model_copy(
        update={"url": f"sqlite:///{tmp}/sim.db"})})
    clock = SimClock(time.time())
    cluster = SimCluster(clock, dict(PLACEMENT), dict(MEM), bandwidth_mib_s=100.0)
    source = SimSource(cluster, {h: 2 for h in ("labh1", "labh2", "labh3")},
                       {h: 4096.0 for h in ("labh1", "labh2", "labh3")},
                       vm_cpu={"hungry": 1.0, "quiet": 0.01}, forced={"labh1": 0.9})
    store = Store.open(cfg.store.url, mode="create")
    executor = Executor(cluster, clock, store, Limits(poll_s=0.5))
    d = Daemon(cfg, resolve_policy(cfg.policy_ref()), store, [source], executor, clock,
               Mode.enforce)
    d.run(rounds=2)
    plan = store.plans()[0].plan
    return [(a["vm"], a["src"], a["dst"]) for a in plan["actions"]]


def test_sim_cluster_and_real_lab_make_the_same_plan(clean_lab: Lab, tmp_path: Path) -> None:
    clean_lab.vm_add("hungry", "labh1", 128, "linux", burn=1)
    clean_lab.vm_add("quiet", "labh1", 64, "idle")
    clean_lab.set_load("labh1", "90")
    cfg = configure(tmp_path, clean_lab)
    out = subprocess.run([*exec_prefix(), ULM, "run", "-c", str(cfg), "--mode", "enforce",
                          "--rounds", "2"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    real = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create").plans()[0].plan
    real_moves = [(a["vm"], a["src"], a["dst"]) for a in real["actions"]]
    assert real_moves == [("hungry", "labh1", "labh2")]
    assert sim_plan(cfg, tmp_path) == real_moves
