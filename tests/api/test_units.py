"""The event bus across threads, the settings' rules, token files and constant-time checks."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests import secrets
from ulm.api.auth import Authenticator, load_tokens
from ulm.api.bus import EventBus
from ulm.api.settings import ApiSettings, Role, TokenConfig
from ulm.errors import UlmError


def _collect(bus: EventBus, n: int, after: int = 0, publish_from_thread: int = 0
             ) -> list[str]:
    async def main() -> list[str]:
        out: list[str] = []
        stream = bus.subscribe(after, heartbeat_s=0.05)
        assert (await anext(stream)).startswith("retry:")
        if publish_from_thread:
            threading.Thread(target=lambda: [bus.publish("round", {"i": i})
                                             for i in range(publish_from_thread)]).start()
        async for chunk in stream:
            if chunk.startswith("id:"):
                out.append(chunk)
            if len(out) >= n:
                break
        await stream.aclose()
        return out

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_events_published_from_another_thread_arrive_in_order() -> None:
    bus = EventBus()
    got = _collect(bus, 50, publish_from_thread=50)
    data = [json.loads(c.split("data: ")[1]) for c in got]
    assert [d["data"]["i"] for d in data] == list(range(50))
    assert all(d["kind"] == "round" for d in data)


def test_a_reconnecting_client_gets_what_it_missed() -> None:
    bus = EventBus(keep=3)
    for i in range(5):
        bus.publish("plan", {"i": i})
    got = _collect(bus, 2, after=3)  # Last-Event-ID: 3 -> events 4 and 5
    assert [c.split("\n")[0] for c in got] == ["id: 4", "id: 5"]
    assert [e.id for e in bus.recent()] == [3, 4, 5]


def test_a_slow_subscriber_is_cut_off_not_the_daemon_blocked() -> None:
    bus = EventBus(queue_size=3)

    async def main() -> list[str]:
        stream = bus.subscribe(heartbeat_s=5)
        await anext(stream)
        for i in range(10):  # the subscriber reads nothing meanwhile
            bus.publish("round", {"i": i})
        await asyncio.sleep(0.05)  # the loop delivers the queued calls
        return [c async for c in stream]

    chunks = asyncio.run(asyncio.wait_for(main(), 10))
    assert chunks[-1].startswith("event: overflow")
    assert len(chunks) <= 3


def test_close_ends_every_stream() -> None:
    bus = EventBus()

    async def main() -> list[str]:
        stream = bus.subscribe(heartbeat_s=5)
        await anext(stream)
        asyncio.get_running_loop().call_later(0.05, bus.close)
        return [c async for c in stream]

    assert asyncio.run(asyncio.wait_for(main(), 10)) == []


def _token(tmp: Path, name: str, text: str, role: str = "viewer") -> TokenConfig:
    (tmp / f"{name}.token").write_text(text)
    return TokenConfig(name=name, role=role, token_file=f"{name}.token")


def test_tokens_are_checked_against_every_configured_one(tmp_path: Path) -> None:
    tokens = load_tokens([_token(tmp_path, "a", secrets.TOKEN + "-a\n", "viewer"),
                          _token(tmp_path, "b", secrets.TOKEN + "-b", "admin")], tmp_path)
    auth = Authenticator(tokens, 60.0)
    b = auth.bearer(f"Bearer {secrets.TOKEN}-b")
    assert b is not None and (b.name, b.role) == ("b", Role.admin)
    assert auth.bearer(f"Bearer {secrets.TOKEN}-a").role == Role.viewer  # type: ignore[union-attr]
    assert auth.bearer(f"Bearer {secrets.TOKEN}") is None  # a prefix is not the token
    assert auth.bearer(f"Token {secrets.TOKEN}-a") is None


def test_sessions_expire(tmp_path: Path) -> None:
    now = [1000.0]
    auth = Authenticator(load_tokens([_token(tmp_path, "a", secrets.TOKEN + "-a")], tmp_path),
                         60.0, clock=lambda: now[0])
    sid = auth.login(secrets.TOKEN + "-a")
    assert sid is not None and auth.login("wrong") is None
    p = auth.session(sid)
    assert p is not None and p.via == "cookie" and len(p.csrf) > 20
    now[0] += 61
    assert auth.session(sid) is None


def test_a_short_or_missing_token_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    with pytest.raises(UlmError) as short:
        load_tokens([_token(tmp_path, "a", "tok-ULMTEST-x")], tmp_path)
    assert "fewer than 16" in str(short.value) and "tok-ULMTEST-x" not in str(short.value)
    with pytest.raises(UlmError, match="cannot read"):
        load_tokens([TokenConfig(name="z", role="admin", token_file="/nonexistent/t")])


@pytest.mark.parametrize(("values", "says"), [
    ({"listen": "0.0.0.0"}, "HOST:PORT"),
    ({"listen": "example.org:80"}, "IP address"),
    ({"listen": "127.0.0.1:0"}, "HOST:PORT"),
    ({"tls_cert": "c.pem"}, "go together"),
    ({"tokens": [{"name": "a", "role": "root", "token_file": "t"}]}, "role"),
    ({"tokens": [{"name": "a", "role": "admin", "token_file": "t"},
                 {"name": "a", "role": "viewer", "token_file": "u"}]}, "unique"),
])
def test_settings_rules(values: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ApiSettings.model_validate(values)


def test_settings_defaults_to_loopback() -> None:
    s = ApiSettings()
    assert (s.host, s.port) == ("127.0.0.1", 9181)
    assert ApiSettings(listen="[::1]:8080").host == "::1"


def test_the_api_runs_in_a_thread_beside_the_daemon(tmp_path: Path) -> None:
    import httpx

    from tests.api.conftest import free_port
    from ulm.api import create_app
    from ulm.api.local import DaemonActions
    from ulm.api.serve import start_in_thread
    from ulm.config import Config, HostConfig, StoreConfig
    from ulm.store import Store

    cfg = Config(store=StoreConfig(url=f"sqlite:///{tmp_path}/ulm.db"),
                 hosts=(HostConfig(name="h1", libvirt_uri="test:///h1"),))
    settings = ApiSettings(tokens=(_token(tmp_path, "v", secrets.TOKEN + "-v"),))
    store = Store.open(cfg.store.url, mode="create")
    app = create_app(store, cfg, settings, DaemonActions(None, EventBus()),
                     token_base=tmp_path)
    port = free_port()
    srv, thread = start_in_thread(app, settings, port)
    try:
        for _ in range(100):
            if srv.started:
                break
            thread.join(0.05)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/hosts",
                      headers={"Authorization": f"Bearer {secrets.TOKEN}-v"})
        assert r.status_code == 200 and r.json() == []  # an empty store: no hosts yet
    finally:
        srv.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def test_a_percentage_that_rounds_to_zero_from_below_shows_0_not_minus_0() -> None:
    from ulm.web.pages import _pct

    shown = [_pct(x) for x in (None, -0.001, 0.0, 0.114, -0.02)]
    assert shown == ["-", "0%", "0%", "11%", "-2%"]
