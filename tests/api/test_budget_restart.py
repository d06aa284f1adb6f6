"""Against the real server process: the overview shows today's migrations against the daily
budget, a round past the budget says what waits; and after a restart on the same store,
History still shows the events from before it."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import assert_no_secret, start, stop
from ulm.model import Move
from ulm.store import Store

SEED = (Path(__file__).resolve().parents[2] / "src" / "ulm" / "policies" / "seed.toml")


def test_the_budget_on_the_overview_and_events_across_a_restart(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(
        SEED.read_text().replace("[gates]\n", "[gates]\nmax_migrations_per_day = 1\n"))
    server = start(tmp_path)
    try:
        with server.client("admin") as c:
            ov = c.get("/api/v1/overview").json()
            assert ov["migration_budget"] == 1 and ov["migrations_today"] == 0
            assert ov["in_flight"] == 0
            r = c.post("/api/v1/plans/latest/apply", json={"skip": []})
            assert r.status_code == 200 and r.json()["status"] == "applied", r.text
            ov = c.get("/api/v1/overview").json()
            assert ov["migrations_today"] == 1 and ov["migration_budget"] == 1
            page = c.get("/").text
            assert 'id="migrations-today">1 / 1<' in page and "used up" in page
            assert c.put("/api/v1/mode", json={"mode": "observe"}).status_code == 200
            events = c.get("/api/v1/events", params={"kind": "migration_started"}).json()
            assert events["total"] == 1
    finally:
        stop(server)
        assert_no_secret(server)

    again = start(tmp_path)  # a restart: the same store, a new process, an empty event bus
    try:
        with again.client("operator") as c:
            started = c.get("/api/v1/events", params={"kind": "migration_started"}).json()
            assert started["total"] == 1
            e = started["events"][0]
            assert e["subject"] == "web1" and "web1" in e["about"] and "h1" in e["about"]
            mode = c.get("/api/v1/events", params={"kind": "mode"}).json()["events"]
            assert len(mode) == 1 and "by admin-1" in mode[0]["detail"]
            history = c.get("/history", params={"about": "web1"}).text
            assert "migrating web1 h1 -&gt; " in history  # escaped by the template
            # the simulated cluster starts over (web1 back on a hot h1), and today's budget
            # is spent: the round plans no move and says what waits
            now = c.post("/api/v1/plan-now").json()
            assert now["actions"] == 0
            assert any("migration budget of the day used up (1 of 1 started today)" in p
                       for p in now["problems"]), now
            # that round stored no plan (nothing to do): the Overview still says the day's
            # budget is spent, from the round's problems as data (kind DAY_BUDGET)
            newest = c.get("/api/v1/plans", params={"limit": 1}).json()[0]
            assert newest["problems"] == 0
            ov = c.get("/api/v1/overview").json()
            assert ov["problems"][0].startswith("migration budget of the day used up (1 of 1 "
                                                "started today)"), ov["problems"]
            assert "migration budget of the day used up" in c.get("/").text
    finally:
        stop(again)
        assert_no_secret(again)


def test_an_advised_plan_applied_later_finds_the_days_budget_spent(tmp_path: Path) -> None:
    """Advised within the budget; by the time an operator applies it, a migration started
    elsewhere spent the day's one: the move is refused, with the kind of reason, not made."""
    (tmp_path / "policy.toml").write_text(
        SEED.read_text().replace("[gates]\n", "[gates]\nmax_migrations_per_day = 1\n"))
    server = start(tmp_path)
    try:
        with server.client("operator") as c:
            plan = c.get("/api/v1/plans/latest").json()
            assert plan["status"] == "proposed" and len(plan["action_list"]) == 1, plan
            other = Store.open(f"sqlite:///{tmp_path}/ulm.db", mode="write")
            other.intent("elsewhere", 1, Move("db1", "h2", "h3", "by hand"))  # started today
            other.engine.dispose()
            r = c.post(f"/api/v1/plans/{plan['id']}/apply", json={"skip": []})
            assert r.status_code == 200, r.text
            (o,) = r.json()["outcomes"]
            assert o["status"] == "skipped", o
            assert o["detail"].startswith("today's migration budget used up (1 of 1 started "
                                          "today)"), o
            assert c.get("/api/v1/overview").json()["migrations_today"] == 1  # none more
    finally:
        stop(server)
        assert_no_secret(server)
