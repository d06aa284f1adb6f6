"""TLS through uvicorn's ssl options: a self-signed certificate for 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import TOKENS, Server, assert_no_secret, start, stop


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[Server]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    server = start(tmp_path, tls=True)
    try:
        yield server
    finally:
        stop(server)
        assert_no_secret(server)


def test_the_api_over_tls_and_a_secure_cookie(tls: Server) -> None:
    assert tls.url.startswith("https://127.0.0.1:")
    with tls.client("viewer") as c:
        assert c.get("/api/v1/whoami").json()["role"] == "viewer"
    with tls.client() as c:
        r = c.get("/login", params={"token": TOKENS["viewer"]})
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not answered
        httpx.get(tls.url.replace("https", "http") + "/api/v1/openapi.json", timeout=5)
    with pytest.raises(httpx.ConnectError):  # an unknown certificate is not trusted
        httpx.get(tls.url + "/api/v1/openapi.json", timeout=5)
