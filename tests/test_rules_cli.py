"""`ulm plan` and `ulm policy check` with keep-together groups, repair-only and an unreadable
priority label: the example snapshot's labels changed, the plan and the check as printed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_policy import ROOT, run_ulm


def _snap(tmp_path: Path, labels: dict[str, dict[str, str]]) -> str:
    doc = json.loads((ROOT / "examples" / "snapshots" / "hot-host.json").read_text())
    for v in doc["vms"]:
        if v["name"] in labels:
            v["labels"] = labels[v["name"]]
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_ulm_plan_in_repair_only_mode_joins_a_split_group_and_nothing_else(
        tmp_path: Path) -> None:
    # hv1 is hot (seed would relieve it); cache1 (hv2) and ci1 (hv3) are one keep-together
    # group: a tie, joined on hv2, the lower-numbered host. web1/web2 are on two hosts: fine.
    snap = _snap(tmp_path, {"cache1": {"ulm.keep-together": "c"},
                            "ci1": {"ulm.keep-together": "c"},
                            "batch1": {"ulm.priority": "urgent"}})
    pol = tmp_path / "policy.toml"
    pol.write_text('mode = "repair-only"\n'
                   + (ROOT / "src" / "ulm" / "policies" / "seed.toml").read_text())
    out = run_ulm("plan", "--snapshot", snap, "--policy", str(pol), "--format", "json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert [(a["vm"], a["src"], a["dst"]) for a in plan["actions"]] == [("ci1", "hv3", "hv2")]
    assert any("unreadable label: ulm.priority = 'urgent'" in p for p in plan["problems"])
    (row,) = [d for d in plan["decisions"] if d["vm"] == "ci1"]
    assert row["trigger"] == "repair: keep-together group c is on 2 hosts; joined on hv2"
    table = run_ulm("plan", "--snapshot", snap, "--policy", str(pol)).stdout
    assert "repair:" in table and "keep-together" in table  # the table wraps its cells
    check = run_ulm("policy", "check", str(pol))
    assert check.returncode == 0, check.stderr
    assert 'mode = "repair-only"' in check.stdout and "keep_together = []" in check.stdout
    pol.write_text('mode = "repair"\n')
    bad = run_ulm("policy", "check", str(pol))
    assert bad.returncode != 0 and "mode" in bad.stderr
