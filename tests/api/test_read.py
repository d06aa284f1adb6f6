"""The read routes against the real server (a daemon's rounds on SimCluster in the store)."""

from __future__ import annotations

import statistics

import pytest

from tests.api.conftest import TOKENS, Server

READ = ["/api/v1/whoami", "/api/v1/overview", "/api/v1/hosts", "/api/v1/hosts/h1/cpu",
        "/api/v1/hosts/h1/mem",
        "/api/v1/vms", "/api/v1/plans", "/api/v1/plans/latest", "/api/v1/decisions?vm=web1",
        "/api/v1/maintenance", "/api/v1/energy", "/api/v1/events", "/api/v1/mode"]


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_reads_every_route(shared: Server, role: str) -> None:
    with shared.client(role) as c:
        for path in READ:
            r = c.get(path)
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-type"] == "application/json"
        assert c.get("/api/v1/whoami").json() == {"name": f"{role}-1", "role": role,
                                                  "via": "bearer"}


def test_no_token_wrong_token_and_wrong_scheme_are_401(shared: Server) -> None:
    with shared.client() as c:
        for path in READ:
            for headers in ({}, {"Authorization": "Bearer not-a-token-at-all-x"},
                            {"Authorization": f"Basic {TOKENS['admin']}"},
                            {"Authorization": "Bearer"}):
                r = c.get(path, headers=headers)
                assert r.status_code == 401, (path, headers, r.text)
                assert r.json() == {"error": "authentication required: "
                                             "Authorization: Bearer TOKEN"}
                assert r.headers["www-authenticate"].startswith("Bearer")


def test_hosts_and_vms_show_the_store_snapshot(shared: Server) -> None:
    with shared.client("viewer") as c:
        hosts = {h["name"]: h for h in c.get("/api/v1/hosts").json()}
        vms = {v["name"]: v for v in c.get("/api/v1/vms").json()}
    assert set(hosts) == {"h1", "h2", "h3"}
    assert sorted(hosts["h1"]["vms"]) == ["web1", "web2", "web3"]
    assert hosts["h1"]["state"] == "on" and hosts["h1"]["cpu_measured"] == 1.0
    assert hosts["h1"]["cpu_vms"] == pytest.approx((1.6 + 1.5 + 1.4) / 4)
    assert vms["web1"]["host"] == "h1" and vms["web1"]["cpu"] == pytest.approx(1.6)
    assert vms["web1"]["vcpus"] == 2 and not vms["web1"]["stale"]
    assert vms["web1"]["history"][-1] == pytest.approx(1.6)
    with shared.client("viewer") as c:
        only = c.get("/api/v1/vms", params={"host": "h2"}).json()
        cpu = c.get("/api/v1/hosts/h1/cpu", params={"since": "-1h"}).json()
    assert [v["name"] for v in only] == ["db1"]
    assert len(cpu["ts"]) == len(cpu["cpu"]) == 5 and cpu["cpu"][-1] == 1.0


def test_memory_series_and_how_each_host_is_powered(shared: Server) -> None:
    with shared.client("viewer") as c:
        # an hour: 1,000 buckets of 3.6 s, each of these minutely samples its own point
        mem = c.get("/api/v1/hosts/h1/mem", params={"since": "-1h"}).json()
        cpu = c.get("/api/v1/hosts/h1/cpu", params={"since": "-1h"}).json()
        hosts = {h["name"]: h for h in c.get("/api/v1/hosts").json()}
        late = c.get("/api/v1/hosts/h1/mem", params={"since": cpu["ts"][-1]}).json()
    # h1's host samples: its three VMs' 1024 MiB each, of its 16 GiB, one per round
    assert mem["ts"] == cpu["ts"] and mem["mem_mib"] == [3072.0] * 5
    assert mem["mem_total_mib"] == 16384.0 and mem["mem"] == [3072.0 / 16384.0] * 5
    assert late["ts"] == [cpu["ts"][-1]]  # `since` cuts the series as the CPU's
    assert hosts["h1"]["power_driver"] == "" and hosts["h1"]["power_address"] == ""
    assert hosts["h2"]["power_driver"] == "redfish"
    assert hosts["h2"]["power_address"] == "https://bmc:***@127.0.0.1:8443"  # blanked
    assert hosts["h3"]["power_driver"] == "wol" and hosts["h3"]["state"] == "on"
    assert all(h["next_maintenance"] is None for h in hosts.values())  # nothing booked


def test_plans_plan_detail_and_the_latest_alias(shared: Server) -> None:
    with shared.client("viewer") as c:
        plans = c.get("/api/v1/plans").json()
        latest = c.get("/api/v1/plans/latest").json()
        older = c.get(f"/api/v1/plans/{plans[1]['id']}").json()
        limited = c.get("/api/v1/plans", params={"limit": 1}).json()
    assert plans[0]["status"] == "proposed" and plans[1]["status"] == "superseded"
    assert latest["id"] == plans[0]["id"] and older["id"] == plans[1]["id"]
    assert len(limited) == 1
    (move,) = latest["action_list"]
    assert (move["seq"], move["kind"], move["vm"], move["src"]) == (1, "move", "web1", "h1")
    assert "overload" in move["reason"]
    (row,) = latest["decisions"]
    assert row["vm"] == "web1" and row["outcome"].startswith("moved to")
    assert latest["outcomes"] == [] and latest["problem_list"] == []
    assert latest["efficacy"]["hosts_overloaded_before"] == 1


def test_decisions_say_why_a_vm_moved_and_nothing_for_one_that_did_not(shared: Server) -> None:
    with shared.client("viewer") as c:
        web1 = c.get("/api/v1/decisions", params={"vm": "web1"}).json()
        db1 = c.get("/api/v1/decisions", params={"vm": "db1"}).json()
    assert web1["plans_searched"] == 3 and len(web1["decisions"]) == 3
    first = web1["decisions"][0]
    assert first["decision"]["trigger"].startswith("overload: h1")
    assert first["moves"][0]["dst"] == first["decision"]["outcome"].removeprefix("moved to ")
    assert db1["decisions"] == []


def test_events_are_paged_newest_first(shared: Server) -> None:
    with shared.client("viewer") as c:
        page = c.get("/api/v1/events", params={"limit": 2}).json()
        rest = c.get("/api/v1/events", params={"limit": 2, "offset": 2}).json()
        plans = c.get("/api/v1/events", params={"kind": "plan"}).json()
    assert page["total"] == 3 and len(page["events"]) == 2 and len(rest["events"]) == 1
    ts = [e["ts"] for e in page["events"] + rest["events"]]
    assert ts == sorted(ts, reverse=True)
    assert plans["total"] == 3 and all(e["kind"] == "plan" for e in plans["events"])


def test_energy_totals_and_series(shared: Server) -> None:
    with shared.client("viewer") as c:
        now = c.get("/api/v1/overview").json()["now"]
        e = c.get("/api/v1/energy", params={"since": now - 600, "until": now,
                                            "step": 60}).json()
        iso = c.get("/api/v1/energy", params={"since": "2026-01-01T00:00:00Z"})
    assert e["kwh"] > 0 and e["saved_kwh"] == 0  # nothing was ever powered off
    assert {h["host"] for h in e["hosts"]} == {"h1", "h2", "h3"}
    assert len(e["series"]) == 10
    assert sum(p["kwh"] for p in e["series"]) == pytest.approx(e["kwh"], rel=1e-3, abs=1e-4)
    assert iso.status_code == 200


def test_overview(shared: Server) -> None:
    with shared.client("viewer") as c:
        ov = c.get("/api/v1/overview").json()
    assert ov["mode"] == "advise" and ov["hosts"] == {"on": 3} and ov["vms"] == 5
    assert ov["latest_plan"]["status"] == "proposed" and ov["migrations_today"] == 0
    assert ov["in_flight"] == 0 and ov["next_event"] is None  # no booking, no calendar
    with shared.client("viewer") as c:
        hosts = c.get("/api/v1/hosts").json()
    use = [h["cpu_measured"] if h["cpu_measured"] is not None else h["cpu_vms"] for h in hosts]
    assert ov["imbalance"] == pytest.approx(statistics.pstdev(use)) and ov["imbalance"] > 0.1
    assert ov["energy_today_always_on_kwh"] >= ov["energy_today_kwh"] >= 0


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/api/v1/plans/p-nope", 404, "no plan 'p-nope'"),
    ("/api/v1/hosts/h9/cpu", 404, "no host 'h9'"),
    ("/api/v1/hosts/h9/mem", 404, "no host 'h9'"),
    ("/api/v1/hosts/h1/mem?since=yesterday", 422, "query.since"),
    ("/api/v1/nowhere", 404, "Not Found"),
    ("/api/v1/plans?limit=0", 422, "query.limit"),
    ("/api/v1/plans?limit=x", 422, "query.limit"),
    ("/api/v1/decisions", 422, "query.vm"),
    ("/api/v1/energy?since=yesterday", 422, "query.since"),
    ("/api/v1/energy?since=2000000000&until=1900000000", 422, "query.until"),
    ("/api/v1/energy?since=nan", 422, "query.since"),
    ("/api/v1/energy?since=1000000000&until=1086400000&step=1", 422, "query.step"),
    ("/api/v1/events?offset=-1", 422, "query.offset"),
])
def test_errors_are_json_with_the_right_status(shared: Server, path: str, status: int,
                                               says: str) -> None:
    with shared.client("viewer") as c:
        r = c.get(path)
    assert r.status_code == status
    assert list(r.json()) == ["error"] and says in r.json()["error"]


def test_openapi_describes_every_route_and_the_error_model(shared: Server) -> None:
    with shared.client() as c:
        doc = c.get("/api/v1/openapi.json").json()
    paths = set(doc["paths"])
    for p in ["/api/v1/hosts", "/api/v1/vms", "/api/v1/plans/{plan_id}", "/api/v1/decisions",
              "/api/v1/energy", "/api/v1/events", "/api/v1/stream", "/api/v1/maintenance",
              "/api/v1/maintenance/{booking_id}", "/api/v1/plans/{plan_id}/apply",
              "/api/v1/hosts/{name}/drain", "/api/v1/hosts/{name}/mem", "/api/v1/mode",
              "/api/v1/plan-now"]:
        assert p in paths, p
    assert "/login" not in paths  # the pages are not API
    assert "ErrorOut" in doc["components"]["schemas"]
    assert "HostOut" in doc["components"]["schemas"]


def test_every_answer_carries_the_security_headers(shared: Server) -> None:
    with shared.client("viewer") as c:
        for r in (c.get("/api/v1/hosts"), c.get("/api/v1/nope"), c.get("/login")):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "script-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["cache-control"] == "no-store"
