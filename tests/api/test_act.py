"""The act routes against the real server: a real daemon (advise mode) on SimCluster applies,
rejects, books and drains through `DaemonActions`; roles, 404/409/422, the event stream."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server

ACT = [("POST", "/api/v1/plans/latest/apply", {"skip": []}),
       ("POST", "/api/v1/plans/latest/reject", {}),
       ("POST", "/api/v1/maintenance", {"host": "h3", "start": 1, "end": 2}),
       ("DELETE", "/api/v1/maintenance/1", None),
       ("POST", "/api/v1/hosts/h3/drain", {}),
       ("POST", "/api/v1/hosts/h3/undrain", None),
       ("POST", "/api/v1/plan-now", None),
       ("PUT", "/api/v1/mode", {"mode": "enforce"})]


def _send(c: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return c.request(method, path, json=body)


def test_nobody_acts_without_a_token_and_a_viewer_never_acts(fresh: Server) -> None:
    with fresh.client() as anon, fresh.client("viewer") as viewer, \
            fresh.client("operator") as op:
        for method, path, body in ACT:
            assert _send(anon, method, path, body).status_code == 401, path
            r = _send(viewer, method, path, body)
            assert r.status_code == 403 and "viewer-1 is viewer" in r.json()["error"], path
        r = _send(op, "PUT", "/api/v1/mode", {"mode": "enforce"})
        assert r.status_code == 403 and "needs admin" in r.json()["error"]
        # nothing happened: the plan is still proposed, no booking, mode unchanged
        assert op.get("/api/v1/plans/latest").json()["status"] == "proposed"
        assert op.get("/api/v1/maintenance", params={"all": True}).json() == []
        assert op.get("/api/v1/mode").json()["message"] == "advise"


def _stream(server: Server, out: list[dict[str, Any]], ready: threading.Event,
            want: int) -> None:
    with server.client("viewer") as c, c.stream("GET", "/api/v1/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        ready.set()
        for line in r.iter_lines():
            server.seen.append(line)
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if len(out) >= want:
                    return


def test_an_operator_applies_the_advised_plan_and_the_stream_says_so(fresh: Server) -> None:
    events: list[dict[str, Any]] = []
    ready = threading.Event()
    t = threading.Thread(target=_stream, args=(fresh, events, ready, 3), daemon=True)
    t.start()
    assert ready.wait(10)
    with fresh.client("operator") as c:
        plan = c.get("/api/v1/plans/latest").json()
        assert plan["state"] == "READY"
        (row,) = plan["rows"]  # the move with its load on both hosts, from its snapshot
        assert (row["vm"], row["src"]) == ("web1", "h1")
        assert row["src_before"]["cpu"] > 1.0 > row["src_after"]["cpu"]  # h1: 4.5 of 4 cores
        assert row["dst_after"]["cpu"] > row["dst_before"]["cpu"]
        assert row["dst_after"]["mem"] > row["dst_before"]["mem"] > 0
        assert row["estimate_s"] > 0 and row["estimate_basis"] == "assumed"
        r = c.post("/api/v1/plans/latest/apply", json={"skip": []})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == {"plan_id": plan["id"], "status": "applied", "outcomes": [
            {"seq": 1, "kind": "move", "status": "done", "detail": ""}]}
        dst = plan["action_list"][0]["dst"]
        listed = c.get("/api/v1/vms").json()
        vms = {v["name"]: v["host"] for v in listed}
        assert vms["web1"] == dst  # the simulated cluster really moved it
        cooling = {v["name"]: v["cooldown_left_s"] for v in listed}
        assert 0 < cooling.pop("web1") <= 1800  # the seed's cool-down, from its move on
        assert set(cooling.values()) == {0.0}  # never moved: free
        detail = c.get(f"/api/v1/plans/{plan['id']}").json()
        assert detail["status"] == "applied" and detail["outcomes"][0]["status"] == "done"
        assert detail["state"] == "DONE"
        # the measured move is what the next estimate goes by
        assert detail["rows"][0]["estimate_basis"] == "measured"
        assert c.get("/api/v1/overview").json()["migrations_today"] == 1
        again = c.post(f"/api/v1/plans/{plan['id']}/apply", json={})
        assert again.status_code == 409 and "is applied, not proposed" in again.json()["error"]
        kinds = [e["kind"] for e in c.get("/api/v1/events").json()["events"]]
        assert "outcome" in kinds
        # "what happened to this VM / on this host": the move is found by each of its names
        for name in ("web1", "h1", dst):
            about = c.get("/api/v1/events", params={"about": name}).json()["events"]
            assert any(e["kind"] == "outcome" and name in e["about"] for e in about), name
            assert all(name in e["about"] for e in about), name
        other = c.get("/api/v1/events", params={"about": "db1"}).json()["events"]
        assert not any(e["kind"] == "outcome" for e in other)
    t.join(10)
    # the executor's outcomes as they happen, then what the API did
    assert [e["kind"] for e in events] == ["migration_started", "migration_done", "plan.applied"]
    done = events[1]["data"]
    assert done["vm"] == "web1" and done["plan_id"] == plan["id"]
    assert done["data"]["dst"] == dst and done["data"]["duration_s"] >= 0
    assert done["text"].startswith(f"migrated web1 h1 -> {dst} in ")
    assert events[2]["data"]["plan_id"] == plan["id"] and events[2]["data"]["by"] == "operator-1"


def test_skip_reject_and_their_errors(fresh: Server) -> None:
    with fresh.client("operator") as c:
        plan = c.get("/api/v1/plans/latest").json()
        bad = c.post("/api/v1/plans/latest/apply", json={"skip": [7]})
        assert bad.status_code == 422 and "cannot skip [7]" in bad.json()["error"]
        for body in ({"skip": [0]}, {"skip": "all"}, {"nope": 1}):
            assert c.post("/api/v1/plans/latest/apply", json=body).status_code == 422
        assert c.post("/api/v1/plans/p-nope/apply", json={}).status_code == 404
        assert c.post("/api/v1/plans/p-nope/reject", json={}).status_code == 404
        skipped = c.post("/api/v1/plans/latest/apply", json={"skip": [1]}).json()
        assert skipped["outcomes"] == [{"seq": 1, "kind": "move", "status": "skipped",
                                        "detail": "skipped by operator-1"}]
        vms = {v["name"]: v["host"] for v in c.get("/api/v1/vms").json()}
        assert vms["web1"] == "h1"  # skipped: it stayed
        # a new round proposes again; rejecting it leaves everything where it is
        again = c.post("/api/v1/plan-now").json()
        assert again["plan_id"] and again["plan_id"] != plan["id"] and again["actions"] == 1
        r = c.post(f"/api/v1/plans/{again['plan_id']}/reject", json={"reason": "not now"})
        assert r.status_code == 200 and c.get("/api/v1/plans/latest").json()["status"] == \
            "rejected"
        late = c.post(f"/api/v1/plans/{again['plan_id']}/apply", json={})
        assert late.status_code == 409
        third = c.post("/api/v1/plan-now").json()["plan_id"]
        fourth = c.post("/api/v1/plan-now").json()["plan_id"]
        assert fourth == third  # the same advice again: the waiting plan is kept
        states = {p["id"]: p["state"] for p in c.get("/api/v1/plans").json()}
        assert (states[plan["id"]], states[again["plan_id"]], states[third]) == (
            "DONE", "REJECTED", "READY")


def test_booking_cancelling_draining_and_their_errors(fresh: Server) -> None:
    with fresh.client("operator") as c:
        now = c.get("/api/v1/overview").json()["now"]
        r = c.post("/api/v1/maintenance", json={"host": "h3", "start": now + 3600,
                                                "end": now + 7200, "power_off": True,
                                                "reason": "firmware"})
        assert r.status_code == 201, r.text
        booked = r.json()
        assert booked["status"] == "booked" and "drain of h3 fits" in booked["detail"]
        (b,) = c.get("/api/v1/maintenance").json()
        assert (b["id"], b["host"], b["power_off"], b["reason"]) == (booked["id"], "h3", True,
                                                                     "firmware")
        nxt = c.get("/api/v1/overview").json()["next_event"]  # the overview's "next"
        assert nxt["ts"] == pytest.approx(now + 3600)
        assert nxt["what"] == f"maintenance #{booked['id']} on h3 starts (drain first)"
        hosts = {h["name"]: h for h in c.get("/api/v1/hosts").json()}
        assert hosts["h3"]["next_maintenance"] == {  # the host's own "next", with its status
            "id": booked["id"], "start": pytest.approx(now + 3600),
            "end": pytest.approx(now + 7200), "status": "booked", "power_off": True}
        assert hosts["h2"]["next_maintenance"] is None
        overlap = c.post("/api/v1/maintenance", json={"host": "h3", "start": now + 5000,
                                                      "end": now + 9000})
        assert overlap.status_code == 409 and "already has maintenance" in overlap.text
        unknown = c.post("/api/v1/maintenance", json={"host": "h9", "start": now,
                                                      "end": now + 60})
        assert unknown.status_code == 404
        backwards = c.post("/api/v1/maintenance", json={"host": "h2", "start": now + 60,
                                                        "end": now})
        assert backwards.status_code == 422 and "end must be after start" in backwards.text
        iso = c.post("/api/v1/maintenance", json={"host": "h2", "start": "2030-01-01T00:00Z",
                                                  "end": "2030-01-01T01:00:00+00:00"})
        assert iso.status_code == 201
        assert c.post("/api/v1/maintenance", json={"host": "h2", "start": "soon",
                                                   "end": 1}).status_code == 422
        gone = c.delete(f"/api/v1/maintenance/{booked['id']}")
        assert gone.status_code == 200 and "cancelled" in gone.json()["message"]
        hosts = {h["name"]: h for h in c.get("/api/v1/hosts").json()}
        assert hosts["h3"]["next_maintenance"] is None  # a cancelled window is no "next"
        assert hosts["h2"]["next_maintenance"]["start"] == 1893456000.0  # 2030-01-01 UTC
        assert c.delete(f"/api/v1/maintenance/{booked['id']}").status_code == 409
        assert c.delete("/api/v1/maintenance/999").status_code == 404
        assert c.delete("/api/v1/maintenance/x").status_code == 422
        drained = c.post("/api/v1/hosts/h3/drain", json={"power_off": False})
        assert drained.status_code == 201
        hosts = {h["name"]: h for h in c.get("/api/v1/hosts").json()}
        assert hosts["h3"]["booking"] == drained.json()["id"]
        assert c.post("/api/v1/hosts/h3/undrain").status_code == 200
        assert c.post("/api/v1/hosts/h3/undrain").status_code == 409
        assert c.post("/api/v1/hosts/h9/undrain").status_code == 404
        assert c.post("/api/v1/hosts/h9/drain", json={}).status_code == 404
        statuses = {x["id"]: x["status"] for x in
                    c.get("/api/v1/maintenance", params={"all": True}).json()}
        assert statuses[booked["id"]] == "cancelled"
        assert statuses[drained.json()["id"]] == "cancelled"


def test_the_admin_switches_the_mode(fresh: Server) -> None:
    with fresh.client("admin") as c:
        assert c.put("/api/v1/mode", json={"mode": "fast"}).status_code == 422
        r = c.put("/api/v1/mode", json={"mode": "observe"})
        assert r.json() == {"mode": "observe", "was": "advise"}
        assert c.get("/api/v1/mode").json()["message"] == "observe"
        assert c.get("/api/v1/overview").json()["mode"] == "observe"
        # observe: a round collects and plans nothing
        assert c.post("/api/v1/plan-now").json() == {
            "plan_id": None, "actions": 0, "problems": [], "dry_run": False, "policy": "",
            "action_list": []}


def test_browser_session_cookie_and_csrf(fresh: Server) -> None:
    from tests.api.conftest import TOKENS

    with fresh.client() as c:
        bad = c.get("/login", params={"token": "wrong-token-000000000"})
        assert bad.status_code == 401 and "ulm_session" not in bad.headers.get("set-cookie", "")
        r = c.get("/login", params={"token": TOKENS["operator"]})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert c.get("/api/v1/whoami").json()["via"] == "cookie"
        page = c.get("/").text
        csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
        assert len(csrf) > 20
        no = c.post("/api/v1/plan-now")
        assert no.status_code == 403 and "CSRF" in no.json()["error"]
        wrong = c.post("/api/v1/plan-now", headers={"X-CSRF-Token": "x" * 32})
        assert wrong.status_code == 403
        ok = c.post("/api/v1/plan-now", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text
        # a bearer request needs no CSRF token, and a wrong bearer is not rescued by the cookie
        assert c.post("/api/v1/plan-now",
                      headers={"Authorization": f"Bearer {TOKENS['operator']}"}).status_code \
            == 200
        assert c.get("/api/v1/whoami", headers={"Authorization": "Bearer nope-nope-nope"}
                     ).status_code == 401
        c.post("/logout", data={"csrf": csrf})
        assert c.get("/api/v1/whoami").status_code == 401
        assert c.get("/").status_code == 303  # pages send you to /login
    with fresh.client() as c:
        form = c.post("/login", data={"token": TOKENS["viewer"]})
        assert form.status_code == 303
        assert c.get("/api/v1/whoami").json()["role"] == "viewer"
        for page in ("/", "/plans/latest", "/history", "/why?vm=web1", "/hosts",
                     "/maintenance", "/energy"):
            r = c.get(page)
            assert r.status_code == 200 and "mode: <strong>ADVISE</strong>" in r.text, page
        assert '<option value="web1" selected>' in c.get("/history?about=web1").text
        page = c.get("/plans/latest").text  # a viewer sees the plan, and no button
        assert 'id="actions"' in page and "Approve" not in page and "Reject plan" not in page
    time.sleep(0.2)  # let the server write its last log lines before the leak check


def test_plan_now_as_a_dry_run_under_another_policy_stores_and_moves_nothing(
        fresh: Server) -> None:
    with fresh.client("operator") as op, fresh.client("viewer") as viewer:
        plans = [p["id"] for p in op.get("/api/v1/plans", params={"limit": 100}).json()]
        where = {v["name"]: v["host"] for v in op.get("/api/v1/vms").json()}
        own = op.post("/api/v1/plan-now", json={"dry_run": True})
        assert own.status_code == 200, own.text
        got = own.json()
        assert got["dry_run"] and got["plan_id"] is None and got["policy"] == "seed"
        # h1 is overloaded: the daemon's policy would move a web VM off it
        assert got["actions"] == len(got["action_list"]) > 0
        assert {a["src"] for a in got["action_list"] if a["kind"] == "move"} == {"h1"}
        other = op.post("/api/v1/plan-now", json={"policy": "lr-mmt-1.2"})
        assert other.status_code == 200 and other.json()["policy"] == "lr-mmt-1.2"
        assert other.json()["dry_run"] and other.json()["plan_id"] is None
        for bad in ({"policy": "no-such-policy"}, {"policy": "/etc/passwd"},
                    {"dry_run": True, "what": 1}):
            r = op.post("/api/v1/plan-now", json=bad)
            assert r.status_code == 422 and "error" in r.json(), (bad, r.text)
            assert "root:" not in r.text
        assert viewer.post("/api/v1/plan-now", json={"dry_run": True}).status_code == 403
        # nothing stored, nothing moved
        assert [p["id"] for p in op.get("/api/v1/plans", params={"limit": 100}).json()] == plans
        assert {v["name"]: v["host"] for v in op.get("/api/v1/vms").json()} == where
