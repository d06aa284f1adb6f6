"""One daemon per store, for as long as it acts: two Daemon objects on one SQLite store."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.daemon.fakes import world
from ulm.collect.base import Collection
from ulm.daemon import Mode
from ulm.errors import UlmError
from ulm.store import Store
from ulm.store import schema as t


@dataclass
class SlowSource:
    """Its second reading (the first round's: the first one primes) takes a while."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    calls: int = 0
    name: str = "slow"

    def collect(self, now: float) -> Collection:
        self.calls += 1
        if self.calls == 2:
            self.entered.set()
            assert self.release.wait(60), "the test never released the slow round"
        return Collection(now, ())


def test_a_round_longer_than_the_lease_keeps_the_lease(tmp_path: Path) -> None:
    # A 2 s lease (renewed every 0.5 s) under a round of several seconds, as a migration of
    # many minutes is under the default lease.
    a = world(tmp_path, {"web1": "hA"}, mode=Mode.observe, start=False)
    slow = SlowSource()
    a.daemon.sources.append(slow)
    a.daemon.owner = "host-a:101"
    a.daemon.lock_ttl_s = 2.0
    runner = threading.Thread(target=a.daemon.run, kwargs={"rounds": 1})
    runner.start()
    try:
        assert slow.entered.wait(30)
        time.sleep(3.0)  # longer than the lease: only the heartbeat keeps it
        b = world(tmp_path, {"web1": "hA"}, mode=Mode.enforce, start=False)
        b.daemon.owner = "host-b:202"
        with pytest.raises(UlmError, match=r"holds the lock .*\(pid 101 on host-a\)"):
            b.daemon.start()
        assert a.daemon.acting
    finally:
        slow.release.set()
        runner.join(60)
    assert a.store.lock_holder() is None  # released at the end


def test_a_daemon_that_loses_the_lock_stops_acting_at_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = world(tmp_path, {"web1": "hA", "db": "hA"}, mode=Mode.enforce, start=False,
              vm_cpu={"web1": 2.0, "db": 2.0})
    w.source.forced["hA"] = 0.95  # hot: every round would migrate
    w.daemon.lock_ttl_s = 2.0  # a heartbeat every 0.5 s
    w.daemon.start()
    store = Store.open(w.daemon.cfg.store.url, mode="write")
    with store.engine.begin() as c:  # another daemon took it
        c.execute(update(t.leases).values(owner="host-x:77", epoch=t.leases.c.epoch + 1,
                                          expires_at=time.time() + 600))
    with caplog.at_level(logging.INFO, "ulm"):
        deadline = time.monotonic() + 10
        while w.daemon.keeper is not None and w.daemon.keeper.held and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.daemon.executor.stopping  # told at once, not at the end of a round
        w.rounds(4)
    assert w.daemon.exit_code == 1  # `ulm run` exits 1: it did not stop cleanly
    assert w.cluster.migrations == 0
    assert w.store.plans() == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["lost the store lease (taken by pid 77 on host-x, epoch 2, ours was 1): "
                      "acting on nothing more; stopping once the actions in flight end"]
    assert w.store.lock_holder() is not None and w.store.lock_holder()[0] == "host-x:77"
