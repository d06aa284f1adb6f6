"""The daemon renews its lease over a twin of the store (its own connections): once the daemon
is done with the lease (released at a stop, never taken by a stopped standby, refused because
another leads) that twin is closed, so no PostgreSQL backend is left behind. Counted on the
server (pg_stat_activity) for a database only the test uses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ulm.clock import WallClock
from ulm.collect.sim_source import SimSource
from ulm.config import CollectConfig, Config, HaConfig, HostConfig, StoreConfig
from ulm.daemon import Daemon, Mode
from ulm.drivers.sim import SimCluster
from ulm.errors import UlmError
from ulm.executor import Executor, Limits
from ulm.policy import resolve_policy
from ulm.store import Store
from ulm.store.lease import Lease, standbys


@pytest.fixture
def backends(pg_url: str, fresh_pg: str) -> Iterator[Callable[[], int]]:
    """How many server backends serve `fresh_pg`'s database, once the count settles (a
    backend ends a moment after its client closes)."""
    name = make_url(fresh_pg).database
    admin = create_engine(pg_url)

    def count() -> int:
        n = -1
        for _ in range(50):  # at most ~5 s: a closed connection's backend is gone well before
            with admin.connect() as c:
                n = int(c.execute(text("SELECT count(*) FROM pg_stat_activity "
                                       "WHERE datname = :d"), {"d": name}).scalar_one())
            if n == 0:
                break
            time.sleep(0.1)
        return n

    yield count
    admin.dispose()


def daemon(url: str, standby: bool = False) -> tuple[Daemon, Store, Executor]:
    clock = WallClock()
    cluster = SimCluster(clock, {"vm1": "hA"}, {"vm1": 512.0})
    source = SimSource(cluster, {"hA": 4}, {"hA": 4096.0}, vm_vcpus={"vm1": 2})
    cfg = Config(store=StoreConfig(url=url), collect=CollectConfig(interval_s=2.0, window=4),
                 ha=HaConfig(standby=standby, lease_s=4, poll_s=0.2),
                 hosts=(HostConfig(name="hA", libvirt_uri="test:///hA"),))
    store = Store.open(url, mode="create")
    executor = Executor(cluster, clock, store, Limits(poll_s=1.0),
                        power={"hA": cluster.power("hA")})
    d = Daemon(cfg, resolve_policy("seed"), store, [source], executor, clock, Mode.observe)
    return d, store, executor


def closed(d: Daemon, store: Store, executor: Executor) -> None:
    d.release()
    executor.close()
    store.close()


def test_a_leader_that_stops_leaves_no_connection_open(fresh_pg: str,
                                                       backends: Callable[[], int]) -> None:
    d, store, executor = daemon(fresh_pg)
    d.prime = lambda seconds=0.0: None  # type: ignore[method-assign]
    d.start()
    d.run_round()
    assert d.lease is not None and d.lease.epoch == 1
    closed(d, store, executor)
    assert backends() == 0


def test_a_standby_stopped_while_waiting_leaves_no_connection_open(
        fresh_pg: str, backends: Callable[[], int]) -> None:
    seed = Store.open(fresh_pg, mode="create")
    assert Lease(seed.engine, "elsewhere:1", 60.0).acquire() == 1  # another controller leads
    d, store, executor = daemon(fresh_pg, standby=True)
    d.prime = lambda seconds=0.0: None  # type: ignore[method-assign]
    waiting = threading.Thread(target=d.start, daemon=True)
    waiting.start()
    for _ in range(100):
        if standbys(seed.engine, time.time()):
            break
        time.sleep(0.1)
    assert standbys(seed.engine, time.time()), "the standby never said it waits"
    d.stop()
    waiting.join(timeout=10)
    assert not waiting.is_alive() and d.lease is None
    seed.close()
    closed(d, store, executor)
    assert backends() == 0


def test_a_refused_second_daemon_leaves_no_connection_open(fresh_pg: str,
                                                           backends: Callable[[], int]) -> None:
    seed = Store.open(fresh_pg, mode="create")
    assert Lease(seed.engine, "elsewhere:1", 60.0).acquire() == 1
    seed.close()
    d, store, executor = daemon(fresh_pg)
    with pytest.raises(UlmError, match="another ULM daemon holds the lock"):
        d.start()
    closed(d, store, executor)
    assert backends() == 0
