"""The event stream's ids are the store's row ids: a client that reconnects with
Last-Event-ID after the server restarted on the same store gets the events it missed, each
once, then the live ones. Against the real server process, stopped and started again."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.api.conftest import Server, assert_no_secret, start, stop


def _read(server: Server, last_id: str, want: int, got: list[tuple[int, str]],
          ready: threading.Event) -> None:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    with server.client("viewer") as c, c.stream("GET", "/api/v1/stream",
                                                 headers=headers) as r:
        ready.set()
        eid = 0
        for line in r.iter_lines():
            server.seen.append(line)
            if line.startswith("id: "):
                eid = int(line[4:])
            elif line.startswith("event: "):
                got.append((eid, line[7:]))
                if len(got) >= want:
                    return


def _stream(server: Server, last_id: str, want: int, act: object = None
            ) -> list[tuple[int, str]]:
    got: list[tuple[int, str]] = []
    ready = threading.Event()
    t = threading.Thread(target=_read, args=(server, last_id, want, got, ready), daemon=True)
    t.start()
    assert ready.wait(20)
    if callable(act):
        act()
    t.join(30)
    assert not t.is_alive(), got
    return got


def test_last_event_id_resumes_across_a_restart(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        with server.client("admin") as c:
            def two_modes() -> None:
                for mode in ("observe", "advise"):
                    assert c.put("/api/v1/mode", json={"mode": mode}).status_code == 200

            seen = _stream(server, "", 2, two_modes)  # a client hears two events live
            assert [k for _, k in seen] == ["mode", "mode"]
            last = seen[-1][0]
            # ... it goes away; meanwhile two more happen
            for mode in ("observe", "advise"):
                assert c.put("/api/v1/mode", json={"mode": mode}).status_code == 200
    finally:
        stop(server)  # a clean stop writes what the bus holds
        assert_no_secret(server)

    again = start(tmp_path)  # the same store, a new process
    try:
        with again.client("admin") as c:
            def one_more() -> None:
                assert c.put("/api/v1/mode", json={"mode": "observe"}).status_code == 200

            got = _stream(again, str(last), 3, one_more)
        ids = [i for i, _ in got]
        assert [k for _, k in got] == ["mode"] * 3, got
        assert ids == sorted(set(ids)) and ids[0] > last, got  # none twice, none before
        # the two it missed from before the restart, then the live one from after it
        with again.client("viewer") as c:
            modes = c.get("/api/v1/events", params={"kind": "mode"}).json()
        assert modes["total"] == 5
    finally:
        stop(again)
        assert_no_secret(again)
