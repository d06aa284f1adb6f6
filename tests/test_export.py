"""`ulm export samples` turns a recorded day into a trace that the simulator replays."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from tests.warm_ulm import warm_ulm
from ulm.collect.base import Collection, HostReading, VMReading
from ulm.sim.traces import load_trace
from ulm.store import Store


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, float]:
    """A store holding one day of readings every 5 minutes through the store's own API:
    web1 (2 vCPUs) busy 1.0 core by day, web2 (4 vCPUs) 0.4 cores, memory 50 % / 25 %."""
    url = f"sqlite:///{tmp_path}/ulm.db"
    cfg = tmp_path / "ulm.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\n[[hosts]]\nname = "h1"\n'
                   'libvirt_uri = "test:///default"\n')
    store = Store.open(url, mode="create")
    start = (time.time() // 300) * 300 - 2 * 86400
    for k in range(288):
        ts = start + k * 300 + 10
        store.add_collection(Collection(ts, (HostReading("h1", ts, True, "", 8, 32768.0, 0.2,
                                                         1000.0, None, "libvirt"),),
                                        (VMReading("web1", "h1", ts, 2, 4096.0,
                                                   1.0 if k < 144 else 0.0, 2048.0),
                                         VMReading("web2", "h1", ts, 4, 8192.0, 0.4, 2048.0))))
    store.close()
    return cfg, start


def test_a_recorded_day_replays_in_the_simulator(recorded: tuple[Path, float],
                                                 tmp_path: Path) -> None:
    cfg, start = recorded
    out = tmp_path / "day.csv.gz"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start))
    r = warm_ulm().run(["export", "samples", "--config", str(cfg), "--since", stamp,
                        "--output", str(out)], timeout=120)
    assert r.returncode == 0, r.stderr
    trace = load_trace(out)
    assert trace.kind == "gcd" and trace.vm_names == ("web1", "web2")
    assert trace.cpu[0, :144].tolist() == [0.5] * 144  # 1 core of 2 vCPUs
    assert trace.cpu[0, 144:].tolist() == [0.0] * 144
    assert trace.cpu[1].tolist() == [0.1] * 288  # 0.4 cores of 4
    assert trace.mem is not None and trace.mem[1].tolist() == [0.25] * 288
    sim = warm_ulm().run(["simulate", "--trace", str(out), "--policy", "seed",
                          "--format", "json"], timeout=300)
    assert sim.returncode == 0, sim.stderr
    assert '"migrations"' in sim.stdout


def test_export_never_overwrites_and_refuses_an_unfinished_day(
        recorded: tuple[Path, float], tmp_path: Path) -> None:
    cfg, _ = recorded
    mine = tmp_path / "precious.csv.gz"
    mine.write_bytes(gzip.compress(b"not ULM's"))
    before = mine.read_bytes()
    r = warm_ulm().run(["export", "samples", "--config", str(cfg), "--since", "-48h",
                        "--output", str(mine)], timeout=120)
    assert r.returncode == 2 and "exists already" in r.stderr
    assert mine.read_bytes() == before
    r = warm_ulm().run(["export", "samples", "--config", str(cfg), "--since", "-2h",
                        "--output", str(tmp_path / "new.csv.gz")], timeout=120)
    assert r.returncode == 2 and "future" in r.stderr
    assert not (tmp_path / "new.csv.gz").exists()
