"""`ulm plan`: what the scheduler would do with a snapshot, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.cli.times import parse_time
from ulm.inputs import visible
from ulm.jsonout import dumps
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
        print(dumps(plan.to_dict(), indent=2))
        return
    render_plan(plan)


def _t(text: str) -> Text:
    """A table cell that shows `text` as it is: no markup, no terminal control codes."""
    return Text(visible(text))


def _m(text: str) -> str:
    """`text` for a markup string: the names in it are shown, never interpreted."""
    return escape(visible(text))


def render_plan(plan: Plan) -> None:
    # Names and reasons come from the snapshot (a VM may be called `[bold]x` or carry an
    # escape sequence): every one is printed as plain text.
    console.print(f"[bold]Plan[/] for snapshot {_m(plan.snapshot_id)} "
                  f"(policy {_m(plan.policy_digest)}): {len(plan.actions)} action(s)")
    actions = Table("stage", "action", "what", "why", show_lines=False)
    for k, stage in enumerate(stages(plan.actions), 1):
        for a in stage:
            if isinstance(a, Move):
                actions.add_row(str(k), "migrate", _t(f"{a.vm}: {a.src} -> {a.dst}"),
                                _t(a.reason))
            elif isinstance(a, PowerOn):
                actions.add_row(str(k), "power on", _t(a.host), _t(a.reason))
            elif isinstance(a, PowerOff):
                actions.add_row(str(k), "power off", _t(a.host), _t(a.reason))
    if plan.actions:
        console.print(actions)
    if plan.decisions:
        why = Table("VM", "on", "trigger", "outcome", "rejected hosts", "best candidates",
                    title="Decisions")
        for d in plan.decisions:
            why.add_row(_t(d.vm), _t(d.host), _t(d.trigger), _t(d.outcome),
                        _t(", ".join(f"{r}: {n}" for r, n in d.rejections.items())),
                        _t(", ".join(f"{h} ({s:g})" for h, s in d.top_scores)))
        console.print(why)
    for p in plan.problems:
        console.print(f"[yellow]problem:[/] {_m(p)}")
    e = plan.efficacy
    console.print(f"overloaded hosts {e.hosts_overloaded_before} -> {e.hosts_overloaded_after}, "
                  f"peak CPU {e.peak_cpu_before:.0%} -> {e.peak_cpu_after:.0%}, "
                  f"hosts freed {e.hosts_freed}, memory to move {e.mem_to_move_mib:.0f} MiB")
