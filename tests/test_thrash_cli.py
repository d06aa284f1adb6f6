"""`ulm plan` and `ulm policy check` with the anti-thrash gates and VM priorities: the
per-VM history and the labels read from a JSON snapshot, the explain rows printed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_policy import ROOT, run_ulm


def _files(tmp_path: Path, vms: dict[str, dict[str, object]], gates: str) -> tuple[str, str]:
    doc = json.loads((ROOT / "examples" / "snapshots" / "hot-host.json").read_text())
    for v in doc["vms"]:
        v.update(vms.get(v["name"], {}))
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(doc))
    pol = tmp_path / "policy.toml"
    pol.write_text((ROOT / "src" / "ulm" / "policies" / "seed.toml").read_text()
                   .replace("[gates]\n", "[gates]\n" + gates)
                   + "[constraints]\npin_critical = true\n")
    return str(snap), str(pol)


def _plan(snap: str, pol: str) -> dict[str, object]:
    out = run_ulm("plan", "--snapshot", snap, "--policy", pol, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_ulm_plan_keeps_a_vm_at_its_daily_limit_and_says_so(tmp_path: Path) -> None:
    # hv1 at 6.8/8 = 85 %: seed moves db1 (3.6), the hungriest; at its limit, web1 goes.
    snap, pol = _files(tmp_path, {"db1": {"moves_today": 3}}, "max_moves_per_vm_per_day = 3\n")
    plan = _plan(snap, pol)
    assert [a["vm"] for a in plan["actions"]] == ["web1"]  # type: ignore[index]
    rows = {d["vm"]: d["outcome"] for d in plan["decisions"]}  # type: ignore[attr-defined]
    assert rows["db1"] == "kept: moved 3 times today (limit 3)"
    table = run_ulm("plan", "--snapshot", snap, "--policy", pol)
    assert "Decisions" in table.stdout and "(limit 3)" in " ".join(table.stdout.split())


def test_ulm_plan_moves_the_lowest_priority_first_and_pins_critical(tmp_path: Path) -> None:
    snap, pol = _files(tmp_path, {"batch1": {"labels": {"ulm.priority": "low"}},
                                  "db1": {"labels": {"ulm.priority": "critical"}}}, "")
    plan = _plan(snap, pol)
    assert [a["vm"] for a in plan["actions"]] == ["batch1"]  # type: ignore[index]
    rows = {d["vm"]: d["outcome"] for d in plan["decisions"]}  # type: ignore[attr-defined]
    assert rows["batch1"] == "moved to hv2 (priority low)"


def test_policy_check_shows_the_new_keys(tmp_path: Path) -> None:
    _, pol = _files(tmp_path, {}, "cooldown_growth = 2\nmax_moves_per_vm_per_day = 3\n")
    out = run_ulm("policy", "check", pol)
    assert out.returncode == 0, out.stderr
    for line in ("cooldown_growth = 2.0", "max_cooldown_s = 86400.0",
                 "max_moves_per_vm_per_day = 3", "pin_critical = true"):
        assert line in out.stdout
    bad = Path(pol).read_text().replace("cooldown_growth = 2", "cooldown_growth = 0.5")
    Path(pol).write_text(bad)
    out = run_ulm("policy", "check", pol)
    assert out.returncode != 0 and "cooldown_growth" in out.stderr
