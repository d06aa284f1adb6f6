"""`ulm plan`: what the scheduler would do with a snapshot, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.cli.times import parse_time
from ulm.model import Move, Plan, PowerOff, PowerOn
from ulm.policy import resolve_policy
from ulm.scheduler import schedule, stages
from ulm.snapshot_json import load_snapshot


@app.command("plan")
@user_errors
def plan_cmd(
    snapshot: Annotated[Path, typer.Option("--snapshot", help="Cluster snapshot (JSON).")],
    policy: Annotated[str, typer.Option("--policy", help="Policy file or built-in name.")],
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    now: Annotated[str | None, typer.Option(
        help="Planning time: epoch seconds, ISO, or +1h from taken_at (default: taken_at)."
    )] = None,
) -> None:
    """Print the plan for a snapshot under a policy, with the decision explanation."""
    pol = resolve_policy(policy)
    snap = load_snapshot(snapshot)
    at = snap.taken_at if now is None else parse_time(now, snap.taken_at, "--now")
    plan = schedule(snap, pol, at)
    if fmt is Format.json:
        print(json.dumps(plan.to_dict(), indent=2))
        return
    render_plan(plan)


def render_plan(plan: Plan) -> None:
    console.print(f"[bold]Plan[/] for snapshot {plan.snapshot_id} "
                  f"(policy {plan.policy_digest}): {len(plan.actions)} action(s)")
    actions = Table("stage", "action", "what", "why", show_lines=False)
    for k, stage in enumerate(stages(plan.actions), 1):
        for a in stage:
            if isinstance(a, Move):
                actions.add_row(str(k), "migrate", f"{a.vm}: {a.src} -> {a.dst}", a.reason)
            elif isinstance(a, PowerOn):
                actions.add_row(str(k), "power on", a.host, a.reason)
            elif isinstance(a, PowerOff):
                actions.add_row(str(k), "power off", a.host, a.reason)
    if plan.actions:
        console.print(actions)
    if plan.decisions:
        why = Table("VM", "on", "trigger", "outcome", "rejected hosts", "best candidates",
                    title="Decisions")
        for d in plan.decisions:
            why.add_row(d.vm, d.host, d.trigger, d.outcome,
                        ", ".join(f"{r}: {n}" for r, n in d.rejections.items()),
                        ", ".join(f"{h} ({s:g})" for h, s in d.top_scores))
        console.print(why)
    for p in plan.problems:
        console.print(f"[yellow]problem:[/] {p}")
    e = plan.efficacy
    console.print(f"overloaded hosts {e.hosts_overloaded_before} -> {e.hosts_overloaded_after}, "
                  f"peak CPU {e.peak_cpu_before:.0%} -> {e.peak_cpu_after:.0%}, "
                  f"hosts freed {e.hosts_freed}, memory to move {e.mem_to_move_mib:.0f} MiB")
