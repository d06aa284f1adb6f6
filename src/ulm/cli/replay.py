"""`ulm replay`: the store's own history through the simulator, once per policy, side by side
with what really happened (docs/replay.md). Read-only: the store is opened for reading."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.cli.run import ConfigOpt
from ulm.cli.times import parse_time, show_time
from ulm.config import load_config
from ulm.errors import UlmError
from ulm.inputs import visible
from ulm.jsonout import dumps
from ulm.numbers import MAX_BOOT_S, MAX_JOBS, bounded
from ulm.policy import resolve_policy
from ulm.replay.load import GapRule, Gaps, load
from ulm.replay.recorded import measure
from ulm.replay.report import Figures, Metric, as_dict, recorded_figures, simulated_figures
from ulm.replay.run import replay_all
from ulm.store import Store

_ROWS: tuple[tuple[Metric, str, str], ...] = (
    (Metric.migrations, "migrations", "{:.0f}"),
    (Metric.overload_host_h, "overload host-h", "{:.2f}"),
    (Metric.slatah, "SLATAH %", "{:.2%}"),
    (Metric.energy_kwh, "energy kWh", "{:.3f}"),
    (Metric.power_offs, "power-offs", "{:.0f}"),
    (Metric.host_hours_off, "host-hours off", "{:.1f}"),
)


@app.command("replay")
@user_errors
def replay_cmd(
    config: ConfigOpt,
    since: Annotated[str, typer.Option(help="Start: ISO time or -7d style offset.")] = "-7d",
    until: Annotated[str, typer.Option(help="End: ISO time, -1d style offset or now.")] = "now",
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", help="Built-in policy name or policy file; repeat to compare several "
                         "(default: the config's policy).")] = None,
    gaps: Annotated[GapRule, typer.Option(
        "--gaps", help="A VM bucket without a sample inside the VM's life: hold its last "
                       "measured bucket, or count no demand (always reported).")] = GapRule.hold,
    boot_s: Annotated[float, typer.Option(
        "--boot-s", help="Seconds a simulated power-on takes at full power.")] = 120.0,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", help="Run this many policies at once (processes).")] = 1,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Replay what ULM recorded through the simulator, per policy, next to what happened."""
    bounded("--boot-s", boot_s, 0, MAX_BOOT_S)
    bounded("--jobs", jobs, 1, MAX_JOBS)
    now = time.time()
    t0 = parse_time(since, now, "--since")
    t1 = min(parse_time(until, now, "--until"), now)  # no figure can come from the future
    if t0 >= t1:
        raise UlmError(f"--since {since} is not before --until {until}: the window is empty "
                       "or reversed")
    cfg = load_config(config)
    pols = [resolve_policy(p) for p in (policy or [cfg.policy_ref()])]
    store = Store.open(cfg.store.url, mode="read")
    try:
        rec = load(store, t0, t1, gaps, cfg.curves())
        recorded = measure(store, rec)
    finally:
        store.close()
    runs = replay_all(rec, pols, boot_s, jobs)
    if fmt is Format.json:
        print(dumps(as_dict(rec, recorded, runs, boot_s), indent=2))
        return
    title = (f"ulm replay {show_time(recorded.span[0])} .. {show_time(recorded.span[1])}: "
             f"{len(rec.host_names)} hosts, {rec.trace.n_vms} VMs, {rec.buckets} x 5 min")
    console.print(_table(title, recorded_figures(recorded),
                         [simulated_figures(r) for r in runs]))
    console.print(f"recorded energy: {recorded.energy_basis.value}; simulated power-on "
                  f"{boot_s:g} s", markup=False)
    for line in gap_lines(rec.gaps):
        console.print(line, markup=False)


def _cell(fmt: str, v: float | None, signed: bool = False) -> str:
    if v is None:
        return "n/a"
    text = fmt.format(v)
    return ("+" + text if v > 0 else text) if signed else text


def _table(title: str, base: Figures, runs: list[Figures]) -> Table:
    table = Table(title=escape(title))
    table.add_column("")
    table.add_column("recorded", justify="right")
    for f in runs:
        table.add_column(escape(visible(f.name)), justify="right")
        table.add_column("diff", justify="right")
    for metric, label, fmt in _ROWS:
        cells = [_cell(fmt, base.values[metric])]
        for f in runs:
            cells += [_cell(fmt, f.values[metric]), _cell(fmt, f.diff(base)[metric], True)]
        table.add_row(label, *cells)
    return table


def gap_lines(g: Gaps) -> list[str]:
    """The gaps in words: what was missing and what the replay did about it."""
    rule = ("held at the VM's last measured bucket" if g.rule is GapRule.hold
            else "counted as no demand")
    out = [f"gaps: {g.filled} of {g.cells} VM buckets had no sample inside the VM's life "
           f"({rule}); {g.absent} lie before a VM's first or after its last sample (not "
           "running: no demand)"]
    if g.daemon_down:
        spans = ", ".join(f"{show_time(a)}..{show_time(b)}" for a, b in g.daemon_down[:5])
        more = f" and {len(g.daemon_down) - 5} more" if len(g.daemon_down) > 5 else ""
        out.append(f"no sample at all (the daemon down?): {spans}{more}")
    if g.host_missing:
        out.append(f"{g.host_missing} host buckets without a host figure while the daemon "
                   "recorded (host off or unreachable)")
    if g.hosts_left_out:
        out.append(f"hosts never measured, left out: {', '.join(g.hosts_left_out)}")
    if g.vms_left_out:
        out.append(f"VMs on hosts outside the inventory, left out: {', '.join(g.vms_left_out)}")
    return [visible(line) for line in out]
