"""A restarted daemon recovers in the background: an orphaned migration with most of its
deadline left does not stop the rounds (issue 10: "recovery must ... not stop monitoring"),
and no round plans what it holds."""

from __future__ import annotations

import time
from pathlib import Path

from tests.daemon.fakes import HOT
from tests.daemon.stepped import BgWorld, LockedCluster, SteppedClock
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.execute.holds import touches
from ulm.executor import Executor, Limits
from ulm.model import Move, Plan
from ulm.store import Store

HOSTS = ("hA", "hB", "hC")


def test_an_orphaned_migration_is_waited_for_while_the_rounds_go_on(tmp_path: Path) -> None:
    clock = SteppedClock(time.time() - 600.0)
    cluster = LockedCluster(clock, {"a1": "hA", "a2": "hA"}, {"a1": 512.0, "a2": 512.0})
    cluster.slow["a1"] = 6.0  # 512 MiB at 62.5 MiB/s x 6: about 50 s
    url = f"sqlite:///{tmp_path}/ulm.db"
    store = Store.open(url, mode="create")
    # the daemon before this one journalled a1's move, started it, and was SIGKILLed
    move = Move("a1", "hA", "hB", "relief")
    p0 = store.save_plan(Plan("s", "p", clock.now(), (move,)), "enforce")
    entry = store.intent(p0, 1, move)
    limits = Limits(poll_s=1.0, max_concurrent=4, deadline_s=600.0)
    store.update(entry, "started", cluster.start_migration(
        "a1", "hA", "hB", Executor(cluster, clock, store, limits)._options()))
    source = SimSource(cluster, {h: 4 for h in HOSTS}, {h: 4096.0 for h in HOSTS},
                       vm_cpu={"a1": 2.0, "a2": 1.5}, vm_vcpus={"a1": 2, "a2": 2})
    cfg = Config(store=StoreConfig(url=url), collect=CollectConfig(interval_s=2.0, window=4),
                 hosts=tuple(HostConfig(name=h, libvirt_uri=f"test:///{h}") for h in HOSTS))
    d = Daemon(cfg, HOT, store, [source], Executor(cluster, clock, store, limits), clock,
               Mode.enforce)
    d.background = True
    t0 = clock.now()
    d.start()  # returns at once: the migration has ~50 s to go
    assert clock.now() - t0 < 30.0 and cluster.running_jobs() == ["a1"]
    w = BgWorld(d, cluster, store, clock, source)
    for _ in range(10):  # hA stays hot meanwhile: a round must not move a1 again
        r = w.round()
        for a in r.plan.actions if r.plan is not None else ():
            vms, _ = touches(a)
            assert "a1" not in vms, f"a round planned the VM recovery holds: {a}"
    assert len({s.ts for s in store.host_samples(t0) if s.host == "hA"}) >= 10  # monitored
    assert cluster.running_jobs() == ["a1"] and store.open_entries()  # still waited for
    while cluster.running_jobs():
        w.round()
    d.executor.join(10)
    assert cluster.placement["a1"] == "hB" and not store.open_entries()
    rows = store.outcomes(p0)
    assert [(r["status"], r["detail"]) for r in rows] == [("done", "completed while ULM was down")]
