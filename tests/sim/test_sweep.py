"""Simulations on a pool of processes give exactly the sequential results, in task order."""

from __future__ import annotations

from pathlib import Path

from tests.sim.conftest import DAYS, write_cut
from ulm.policy import resolve_policy
from ulm.sim.engine import SimConfig
from ulm.sim.hosttypes import parse_hosts
from ulm.sim.sweep import Task, run_all


def _tasks(tmp: Path) -> list[Task]:
    # real PlanetLab rows, 200 VMs a day on 100 hosts: seconds, not minutes
    days = [write_cut(tmp, d, 200) for d in DAYS[:2]]
    hosts = parse_hosts("100")
    return [Task((d,), resolve_policy(p), SimConfig(mode=m, hosts=hosts))
            for d in days for p, m in (("ulm", "honest"), ("lr-mmt-1.2", "compat"))]


def test_parallel_equals_sequential(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path)
    seen: list[int] = []
    parallel = run_all(tasks, jobs=2, done=lambda i, _: seen.append(i))
    sequential = run_all(tasks, jobs=1)

    def strip(r: object) -> dict[str, object]:
        d = r.to_dict()  # type: ignore[attr-defined]
        d.pop("wall_s", None)
        return d

    assert [strip(r) for r in parallel] == [strip(r) for r in sequential]
    assert [(r.trace, r.policy) for r in parallel] == [
        (t.traces[0].name.removesuffix(".csv.gz"), t.policy.name) for t in tasks]
    assert sorted(seen) == list(range(len(tasks)))


def test_simulate_jobs_on_the_command_line(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    days = [str(write_cut(tmp_path, d, 100)) for d in DAYS[:2]]
    ulm = str(Path(sys.executable).parent / "ulm")

    def run(jobs: str) -> list[dict[str, object]]:
        argv = [ulm, "simulate", "--trace", days[0], "--trace", days[1], "--policy", "ulm",
                "--policy", "lr-mmt-1.2", "--hosts", "50", "--jobs", jobs, "--format", "json"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        for r in rows:
            r.pop("wall_s")
        return rows

    parallel = run("2")
    assert [(r["policy"], r["trace"]) for r in parallel] == [
        (p, f"planetlab-{d}-100") for p in ("ulm", "lr-mmt-1.2") for d in DAYS[:2]]
    assert parallel == run("1")
