"""The config's host labels and power curves reach the store at daemon start, and from there
every snapshot (the scheduler's power-aware placement reads both) and `ulm status`'s JSON."""

from __future__ import annotations

import time
from pathlib import Path

from ulm.clock import SimClock
from ulm.collect.sim_source import SimSource
from ulm.config import Config, HostConfig, PowerModelConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.executor import Executor, Limits
from ulm.policy import resolve_policy
from ulm.snapshot_json import snapshot_to_dict
from ulm.store import Store

T0 = float(int(time.time()) - 60)
WATTS = (90.0, 120.0, 140.0, 160.0, 175.0, 190.0, 205.0, 220.0, 235.0, 250.0, 265.0)


def start(tmp: Path, labels: dict[str, str]) -> tuple[Daemon, Store]:
    clock = SimClock(T0)
    cluster = SimCluster(clock, {"a": "h1", "b": "h2"}, {"a": 1024.0, "b": 1024.0})
    source = SimSource(cluster, {"h1": 4, "h2": 4}, {"h1": 8192.0, "h2": 8192.0},
                       vm_cpu={"a": 0.5, "b": 0.5})
    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp}/ulm.db"),
                 power_models={"dl380": PowerModelConfig(watts=WATTS),
                               "tiny": PowerModelConfig(idle_w=20.0, max_w=60.0)},
                 hosts=(HostConfig(name="h1", libvirt_uri="test:///h1", power_curve="dl380",
                                   labels=labels),
                        HostConfig(name="h2", libvirt_uri="test:///h2")))
    store = Store.open(cfg.store.url, mode="create")
    executor = Executor(cluster, clock, store, Limits(poll_s=1.0),
                        power={h: cluster.power(h) for h in ("h1", "h2")})
    daemon = Daemon(cfg, resolve_policy("seed"), store, [source], executor, clock, Mode.advise)
    daemon.start()
    return daemon, store


def test_a_daemon_round_puts_config_labels_and_power_curves_in_the_snapshot(
        tmp_path: Path) -> None:
    d, store = start(tmp_path, {"rack": "r7", "room": "west"})
    d.run_round()
    snap = store.snapshot(d.clock.now(), 4, 60.0)
    h1, h2 = snap.hosts
    assert dict(h1.labels) == {"rack": "r7", "room": "west"} and h1.power == "dl380"
    assert dict(h2.labels) == {} and h2.power == ""
    assert set(snap.power_curves) == {"dl380"}  # only curves a host names
    assert snap.power_curves["dl380"].watts == WATTS
    doc = snapshot_to_dict(snap)  # what `ulm status --format json` prints
    assert doc["power_curves"] == {"dl380": list(WATTS)}
    assert doc["hosts"][0]["labels"] == {"rack": "r7", "room": "west"}
    assert doc["hosts"][0]["power"] == "dl380"
    store.release_lock(d.owner)
    store.close()

    again, store = start(tmp_path, {"rack": "r9"})  # the config changed: the next start says
    snap = store.snapshot(again.clock.now(), 4, 60.0)
    assert dict(snap.hosts[0].labels) == {"rack": "r9"}
    store.close()


def test_hosts_not_collected_yet_already_carry_their_labels(tmp_path: Path) -> None:
    d, store = start(tmp_path, {"rack": "r7"})  # started, no round yet
    snap = store.snapshot(d.clock.now(), 4, 60.0)
    assert snap.host_names == ("h1", "h2")
    assert dict(snap.hosts[0].labels) == {"rack": "r7"}
    assert snap.hosts[0].state.value == "unknown"  # never a destination until it answers
    store.close()
