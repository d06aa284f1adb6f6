"""On the real lab (four hosts): `ulm run` keeps collecting and storing while a slow
(bandwidth-limited) live migration runs in the background, and relieves a second hot host
meanwhile. A move holds its source and its destination, so the second relief needs a fourth
host: the session lab (three) is brought up with four for this test and back afterwards."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LAB_HOSTS, LAB_REDFISH, LAB_SECURE
from tests.lab.helpers import eventually
from tests.lab.test_daemon_lab import ULM, configure
from ulm.lab.lab import Lab, exec_prefix
from ulm.store import Store

pytestmark = pytest.mark.lab


@pytest.fixture
def lab4(clean_lab: Lab) -> Iterator[Lab]:
    clean_lab.down()
    clean_lab.up(4)
    try:
        yield clean_lab
    finally:
        clean_lab.down()
        clean_lab.up(LAB_HOSTS, redfish=LAB_REDFISH, secure=LAB_SECURE)


def test_rounds_go_on_and_a_second_host_is_relieved_during_a_slow_migration(
        lab4: Lab, tmp_path: Path) -> None:
    lab4.vm_add("hungry", "labh1", 256, "linux", burn=1, dirty_mib=48)  # slow at 4 MiB/s
    lab4.vm_add("second", "labh3", 96, "linux", burn=1)
    for host in ("labh1", "labh3"):  # quiet until every host has answered (below)
        lab4.set_load(host, "30")
    cfg = configure(tmp_path, lab4, "bandwidth_mib_s = 4\ndeadline_s = 300")
    with (tmp_path / "daemon.err").open("w") as err:  # the child keeps its own descriptor
        daemon = subprocess.Popen([*exec_prefix(), ULM, "run", "-c", str(cfg), "--mode",
                                   "enforce"], stdout=subprocess.DEVNULL, stderr=err)
    store = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="create")

    def flying() -> list[str]:
        return [getattr(e.action, "vm", "") for e in store.open_entries()
                if e.state == "started"]

    def log() -> str:
        return (tmp_path / "daemon.err").read_text()[-3000:]

    try:
        # The first reads after the lab came up may miss their deadline under load: a host
        # that has not answered yet is no destination, and the moves would go elsewhere.
        everyone = {"labh1", "labh2", "labh3", "labh4"}
        assert eventually(lambda: {s.host for s in store.host_samples(0.0)
                                   if s.cpu is not None} == everyone, timeout=60), log()
        lab4.set_load("labh1", "90")
        assert eventually(lambda: flying() == ["hungry"], timeout=60), log()
        lab4.set_load("labh3", "90")  # now a second host is hot
        assert eventually(lambda: sorted(flying()) == ["hungry", "second"], timeout=40), log()
        assert eventually(lambda: any(o["vm"] == "second" for p in store.plans()
                                      for o in store.outcomes(p.id)), timeout=40), log()
        assert flying() == ["hungry"], "the first migration should still run"
        # Let the first one finish now: its source raises its bandwidth.
        dom = lab4.connect(1).lookupByName("hungry")
        dom.migrateSetMaxSpeed(2000)
        assert eventually(lambda: not store.open_entries(), timeout=60), log()
    finally:  # reaped whatever happened: a daemon left running would outlive the test
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = daemon.wait()
    assert code == 0, log()
    done = {o["vm"]: o for p in store.plans() for o in store.outcomes(p.id)}
    assert {vm: o["status"] for vm, o in done.items()} == {"hungry": "done", "second": "done"}
    first, second = done["hungry"], done["second"]
    assert first["started_at"] < second["started_at"] < second["finished_at"] \
        < first["finished_at"]
    assert first["plan_id"] != second["plan_id"]  # planned by a later round
    # Collected and stored all along the first migration: every host, round after round.
    inside = [s for s in store.host_samples(first["started_at"])
              if s.ts < first["finished_at"]]
    for host in ("labh1", "labh2", "labh3", "labh4"):
        assert len({s.ts for s in inside if s.host == host}) >= 3, host
    assert (lab4.find("hungry"), lab4.find("second")) == ("labh2", "labh4")
