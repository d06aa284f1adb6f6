"""The API tests' fixtures: the real server process (tests/api/server.py) on a free loopback
port, and HTTP clients that keep every answer so that each test can prove no token leaked."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import secrets
from tests.api.server import BMC_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
# Every test token contains secrets.TOKEN: the session hook's search for it covers them all.
TOKENS = {role: f"{secrets.TOKEN}-{role}" for role in ("viewer", "operator", "admin")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    dir: Path
    proc: subprocess.Popen[bytes]
    verify: ssl.SSLContext | bool = True  # trusts a TLS server's own certificate
    seen: list[str] = field(default_factory=list)  # every status line, header and body

    def client(self, role: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}

        def keep(resp: httpx.Response) -> None:
            if resp.headers.get("content-type", "").startswith("text/event-stream"):
                self.seen.append(f"{resp.status_code} {resp.headers}")  # the test reads it
                return
            resp.read()
            self.seen.append(f"{resp.status_code} {resp.headers} {resp.text}")

        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0,
                            verify=self.verify,
                            event_hooks={"response": [keep]}, **kw)

    def log(self) -> str:
        return (self.dir / "server.log").read_text() + (self.dir / "stderr").read_text()


def start(tmp: Path, tls: bool = False) -> Server:
    for role, token in TOKENS.items():
        path = tmp / f"{role}.token"
        path.write_text(token + "\n")
        path.chmod(0o600)
    port = free_port()
    with (tmp / "stderr").open("wb") as err:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "tests.api.server", str(tmp), str(port),
                                 *(["tls"] if tls else [])],
                                cwd=ROOT, stdout=err, stderr=err,
                                env={**os.environ,  # this tree's ulm, whatever is installed
                                     "PYTHONPATH": os.pathsep.join((str(ROOT / "src"),
                                                                    str(ROOT)))})
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    verify: ssl.SSLContext | bool = (ssl.create_default_context(cafile=tmp / "cert.pem")
                                     if tls else True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server died: {(tmp / 'stderr').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/v1/openapi.json", timeout=1,
                         verify=verify).status_code == 200:
                return Server(url, tmp, proc, verify)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 90 s")


def stop(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def assert_no_secret(server: Server) -> None:
    for text in [*server.seen, server.log()]:
        assert secrets.TOKEN not in text, "a token reached a response or the log"
        assert BMC_PASSWORD not in text, "a BMC password reached a response or the log"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the read-only tests of a module."""
    server = start(tmp_path_factory.mktemp("api"))
    try:
        yield server
    finally:
        stop(server)
        assert_no_secret(server)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Server]:
    """A server of its own, for a test that changes state (applies a plan, books ...)."""
    server = start(tmp_path)
    try:
        yield server
    finally:
        stop(server)
        assert_no_secret(server)
