"""`ulm plan` on the shipped example snapshots, and the snapshot format's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_policy import ROOT, run_ulm
from ulm.errors import ConfigError
from ulm.policy import resolve_policy
from ulm.scheduler import schedule
from ulm.snapshot_json import load_snapshot, parse_snapshot, snapshot_to_dict

SNAPSHOTS = sorted((ROOT / "examples" / "snapshots").glob("*.json"))


def plan_json(snapshot: str, policy: str) -> dict[str, object]:
    out = run_ulm("plan", "--snapshot", f"examples/snapshots/{snapshot}.json", "--policy",
                  policy, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_hot_host_seed_moves_the_hungriest_vm() -> None:
    plan = plan_json("hot-host", "seed")
    assert plan["actions"] == [{"vm": "db1", "src": "hv1", "dst": "hv2", "kind": "move",
                                "mem_mib": 8192.0,
                                "reason": "overload: hv1 CPU 85% > 75% in 3 of the last 4 "
                                          "samples"}]
    decisions = plan["decisions"]
    assert isinstance(decisions, list) and decisions[0]["outcome"] == "moved to hv2"


def test_night_power_save_consolidates_and_powers_off_keeping_a_reserve() -> None:
    plan = plan_json("night", "power-save")
    actions = plan["actions"]
    assert isinstance(actions, list)
    moved = {a["vm"] for a in actions if a["kind"] == "move"}
    off = [a["host"] for a in actions if a["kind"] == "power_off"]
    assert "db1" not in moved  # pinned (migratable: false)
    assert len(off) == 1  # two hosts emptied, one kept on as the reserve
    assert actions[-1]["kind"] == "power_off"


def test_maintenance_drains_the_host() -> None:
    plan = plan_json("maintenance", "seed")
    actions = plan["actions"]
    assert isinstance(actions, list)
    assert sorted(a["vm"] for a in actions) == ["db1", "web1"]
    assert all(a["src"] == "hv1" for a in actions)


def test_table_output_explains() -> None:
    out = run_ulm("plan", "--snapshot", "examples/snapshots/hot-host.json", "--policy", "seed")
    assert out.returncode == 0
    assert "db1: hv1 -> hv2" in out.stdout and "Decisions" in out.stdout


@pytest.mark.parametrize("path", SNAPSHOTS, ids=lambda p: p.stem)
def test_snapshot_json_round_trips(path: Path) -> None:
    snap = load_snapshot(path)
    again = parse_snapshot(snapshot_to_dict(snap), "again")
    assert again.id == snap.id
    assert schedule(again, resolve_policy("seed"), 0).to_dict() == schedule(
        snap, resolve_policy("seed"), 0).to_dict()


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"taken_at": 0, "hosts": [{"name": "h", "cpu": -1, "mem_mib": 1}]},
         "s.json: hosts[0].cpu: Input should be greater than 0, got -1"),
        ({"taken_at": 0, "hosts": [], "vms": [{"name": "v", "host": "nope", "cpu": 1,
                                                "mem_mib": 1, "load": {"cpu": 1}}]},
         "s.json: vms[0].host: VM 'v' is on unknown host 'nope'"),
        ({"taken_at": 0, "hosts": [], "color": 1}, "s.json: color: unknown key"),
        ({"hosts": []}, "s.json: taken_at: Field required"),
    ],
)
def test_bad_snapshot(tmp_path: Path, doc: object, expected: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as err:
        load_snapshot(path)
    assert str(err.value).replace(str(tmp_path) + "/", "") == expected


def test_cli_bad_snapshot_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    out = run_ulm("plan", "--snapshot", str(path), "--policy", "seed")
    assert out.returncode == 2 and "not valid JSON" in out.stderr and "Traceback" not in out.stderr


def test_ulm_plan_says_what_the_spent_daily_budget_leaves_undone(tmp_path: Path) -> None:
    doc = json.loads((ROOT / "examples" / "snapshots" / "hot-host.json").read_text())
    doc["migrations_today"] = 5
    snap = tmp_path / "spent.json"
    snap.write_text(json.dumps(doc))
    pol = tmp_path / "budget.toml"
    pol.write_text((ROOT / "src" / "ulm" / "policies" / "seed.toml").read_text()
                   .replace("[gates]\n", "[gates]\nmax_migrations_per_day = 5\n"))
    out = run_ulm("plan", "--snapshot", str(snap), "--policy", str(pol))
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "0 action(s)" in text and "Decisions" in text
    assert "problem: migration budget of the day used up (5 of 5 started today)" in text
    plan = json.loads(run_ulm("plan", "--snapshot", str(snap), "--policy", str(pol),
                              "--format", "json").stdout)
    assert [(d["vm"], d["outcome"]) for d in plan["decisions"]] == [
        ("db1", "kept: today's migration budget used up")]
    # the next day, the same snapshot's count is yesterday's
    later = run_ulm("plan", "--snapshot", str(snap), "--policy", str(pol), "--now", "+1d",
                    "--format", "json")
    assert later.returncode == 0, later.stderr
    assert [a["vm"] for a in json.loads(later.stdout)["actions"]] == ["db1"]
