"""Collection test fixtures shared by several modules."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def mute() -> Iterator[int]:
    """A TCP port on loopback that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield int(srv.getsockname()[1])
    srv.close()
