"""On the real lab: `ulm run` keeps collecting and storing while a slow (bandwidth-limited)
live migration runs in the background.

The second half of issue 11's lab check — a second host relieved while the first migration
still runs — needs a fourth host: a move holds its source and its destination, and the lab has
three (the SimCluster test in tests/daemon/test_background.py shows it on four)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.helpers import eventually
from tests.lab.test_daemon_lab import ULM, configure
from ulm.lab.lab import Lab, exec_prefix
from ulm.store import Store

pytestmark = pytest.mark.lab


def test_samples_are_stored_while_a_slow_migration_runs(clean_lab: Lab,
                                                        tmp_path: Path) -> None:
    clean_lab.vm_add("hungry", "labh1", 128, "linux", burn=1)
    clean_lab.set_load("labh1", "90")
    cfg = configure(tmp_path, clean_lab, "bandwidth_mib_s = 4\ndeadline_s = 300")
    with (tmp_path / "daemon.err").open("w") as err:  # the child keeps its own descriptor
        daemon = subprocess.Popen([*exec_prefix(), ULM, "run", "-c", str(cfg), "--mode",
                                   "enforce"], stdout=subprocess.DEVNULL, stderr=err)
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")
    try:
        assert eventually(lambda: any(e.state == "started" for e in store.open_entries()),
                          timeout=90), \
            f"the migration never started: {(tmp_path / 'daemon.err').read_text()[-2000:]}"
        started = time.time()
        time.sleep(6)  # three rounds at 2 s
        assert store.open_entries(), "the migration should still run (4 MiB/s)"
        during = {s.ts for s in store.host_samples(started) if s.host == "labh3"}
        assert len(during) >= 2, "rounds must go on collecting while the migration runs"
        assert eventually(lambda: not store.open_entries(), timeout=300)
    finally:
        daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=120) == 0
    (plan,) = [p for p in store.plans() if p.mode == "enforce"]
    (o,) = store.outcomes(plan.id)
    assert (o["vm"], o["status"]) == ("hungry", "done")
    inside = {s.ts for s in store.host_samples(o["started_at"])
              if s.host == "labh1" and s.ts < o["finished_at"]}
    assert len(inside) >= 3
    assert clean_lab.find("hungry") == "labh2"
