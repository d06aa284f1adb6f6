"""Two real `ulm run` processes on one PostgreSQL store; the leader reaches it through a TCP
relay on loopback, which the test cuts (it stops forwarding: no reset, the leader's renewal
hangs unanswered). The leader stops acting before the standby takes over."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.daemon.procs import Daemon, eventually
from ulm.store import Store
from ulm.store.lease import holder


class Relay:
    """127.0.0.1:port -> the server's unix socket. `cut()`: bytes are swallowed, nothing is
    closed (a network that drops packets); `heal()`: open connections are reset."""

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.cut_off = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.server.accept()
            except OSError:
                return
            b = socket.socket(socket.AF_UNIX)
            b.connect(self.unix_path)
            self.conns += [a, b]
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self.cut_off.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            s.close()

    def cut(self) -> None:
        self.cut_off.set()

    def heal(self) -> None:
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.cut_off.clear()

    def close(self) -> None:
        self.server.close()
        self.heal()


@pytest.fixture
def relay(fresh_pg: str) -> Iterator[Relay]:
    sock_dir = make_url(fresh_pg).query["host"]
    r = Relay(f"{sock_dir}/.s.PGSQL.5432")
    yield r
    r.close()


def config(tmp: Path, name: str, url: str) -> Path:
    cfg = tmp / f"{name}.toml"
    cfg.write_text(f'policy = "seed"\n[store]\nurl = "{url}"\n[collect]\ninterval_s = 1\n'
                   '[ha]\nstandby = true\nlease_s = 4\npoll_s = 1\n'
                   '[[hosts]]\nname = "t1"\nlibvirt_uri = "test:///default"\n')
    return cfg


def stamp(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def test_a_leader_cut_off_stops_acting_before_the_standby_takes_over(
        tmp_path: Path, fresh_pg: str, relay: Relay) -> None:
    db = make_url(fresh_pg).database
    via_relay = f"postgresql+psycopg://postgres@127.0.0.1:{relay.port}/{db}"
    leader = Daemon(config(tmp_path, "leader", via_relay), name="leader")
    standby = None
    store = Store.open(fresh_pg, mode="create")
    try:
        assert eventually(lambda: (store.lock_holder() or ("",))[0].endswith(f":{leader.pid}"))
        standby = Daemon(config(tmp_path, "standby", fresh_pg), name="standby")
        standby.wait_for("standby: ")
        relay.cut()
        took = standby.wait_for("standby: took over the lead (epoch 2)", timeout=60)
        stopped = leader.wait_for("acting on nothing until it takes writes again")
        assert "the store did not answer before the lease ran out" in stopped
        assert stamp(stopped) < stamp(took)  # it stopped acting first
        relay.heal()
        assert leader.proc.wait(timeout=60) == 1  # back, it learns it lost the lead
        assert len(leader.lines("lost the store lease")) == 1
        h = holder(store.engine)
        assert h is not None and h.owner.endswith(f":{standby.pid}") and h.epoch == 2
        assert standby.stop() == 0
    finally:
        store.close()
        leader.kill()
        if standby is not None:
            standby.kill()
