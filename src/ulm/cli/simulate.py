"""`ulm simulate`: the scheduler's round over a trace, on a simulated cluster and clock."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.cli.times import parse_time
from ulm.errors import UlmError
from ulm.inputs import BadInput, visible
from ulm.jsonout import dumps
from ulm.numbers import MAX_BOOT_S, MAX_JOBS, MAX_SEED, MAX_TRACES, bounded
from ulm.policy import Policy, resolve_policy
from ulm.sim.engine import SimConfig, SimResult, simulate
from ulm.sim.hosttypes import parse_hosts
from ulm.sim.sweep import Task, run_all
from ulm.sim.traces import Trace, chain, load_trace


@app.command("simulate")
@user_errors
def simulate_cmd(
    trace: Annotated[list[Path], typer.Option(
        "--trace", help="Trace file (PlanetLab or GCD .csv.gz); repeat for several days.")],
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", help="Built-in policy name (npa, dvfs, thr-mmt-0.8, lr-mmt-1.2, seed, "
                         "ulm, ...) or a policy file; repeat to compare several "
                         "(default: ulm).")] = None,
    hosts: Annotated[str, typer.Option(
        "--hosts", help="Number of CloudSim hosts (even ids HP ML110 G4, odd G5), or "
                        "g4:N,g5:M.")] = "800",
    seed: Annotated[int, typer.Option("--seed", help="Seed for random selection.")] = 0,
    cloudsim_compat: Annotated[bool, typer.Option(
        "--cloudsim-compat", help="Reproduce CloudSim 3.0.3 with its quirks (idle VMs "
                                  "deleted, RAM not limiting); default: honest mode.")] = False,
    chain_days: Annotated[bool, typer.Option(
        "--chain", help="The traces are consecutive days of one cluster: simulate them as "
                        "one run (VMs matched by name), e.g. a week.")] = False,
    start: Annotated[str | None, typer.Option(
        "--start", help="When the first sample was taken (ISO date/time; UTC unless it says "
                        "otherwise). Needed for a policy with a calendar.")] = None,
    boot_s: Annotated[float | None, typer.Option(
        "--boot-s", help="Real host power states: empty hosts draw idle power until the "
                         "policy powers them off; a power-on takes this many seconds at full "
                         "power. Default: CloudSim's instant, free on/off.")] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", help="Run this many simulations at once (processes; results are the "
                             "same as one at a time).")] = 1,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Simulate a policy over one or more days of trace and report energy and SLA."""
    # Every option is checked before anything is read or run (limits: docs/simulator.md).
    bounded("--seed", seed, 0, MAX_SEED)
    if boot_s is not None:
        bounded("--boot-s", boot_s, 0, MAX_BOOT_S)
    if len(trace) > MAX_TRACES:
        raise BadInput("--trace", f"{len(trace)} files: at most {MAX_TRACES} in one run",
                       kind="too_large")
    bounded("--jobs", jobs, 1, MAX_JOBS)
    cluster = parse_hosts(hosts)
    pols = [_seeded(resolve_policy(p), seed) for p in (policy or ["ulm"])]
    mode = "compat" if cloudsim_compat else "honest"
    begin = max(_start(start, p) for p in pols)  # the same --start for every policy
    try:
        config = SimConfig(mode=mode, hosts=cluster, seed=seed, start=begin, boot_s=boot_s)
    except ValueError as exc:
        raise UlmError(str(exc)) from None
    traces = [load_trace(p) for p in trace]  # every file is checked before anything runs
    if chain_days:
        traces = [chain(traces)]
    if jobs == 1:
        results = [_run(t, pol, config, fmt, len(traces) * len(pols))
                   for pol in pols for t in traces]
    else:  # the traces are read again inside the workers: only paths cross processes
        days = [tuple(trace)] if chain_days else [(p,) for p in trace]
        results = run_all([Task(d, pol, config) for pol in pols for d in days], jobs)
    if fmt is Format.json:
        for r in results:
            print(dumps(r.to_dict()))
        return
    console.print(_table(results))


def _seeded(pol: Policy, seed: int) -> Policy:
    if not seed:
        return pol
    return pol.model_copy(update={"selection": pol.selection.model_copy(update={"seed": seed})})


def _start(text: str | None, pol: Policy) -> float:
    if text is None:
        if pol.calendar is not None:
            raise UlmError(f"policy {pol.name!r} has a calendar (office hours): give --start, "
                           "the date of the trace's first sample, so that they fall on the "
                           "right days")
        return 0.0
    return parse_time(text, time.time(), "--start", utc=True)  # the one parser of CLI times


def _run(trace: Trace, pol: Policy, config: SimConfig, fmt: Format, n: int) -> SimResult:
    """Runs one trace; a progress bar on a terminal for several days or a chained run."""
    if fmt is Format.json or not console.is_terminal or (n == 1 and trace.samples <= 288):
        return simulate(trace, pol, config)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(escape(visible(f"{trace.name} {pol.name}")),
                            total=trace.samples - 1)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done)

        return simulate(trace, pol, dataclasses.replace(config, progress=tick))


def _table(results: list[SimResult]) -> Table:
    """One column per run, one row per metric: fits a terminal for a handful of days."""
    table = Table(title="ulm simulate")
    table.add_column("")
    for r in results:
        # A trace's file name and a policy's name are the user's text, not markup.
        table.add_column(escape(visible(f"{r.trace}\n{r.policy} ({r.mode})")),
                         justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("VMs (kept to the end)", [f"{r.vms} ({r.vms_end})" for r in results]),
        ("energy kWh", [f"{r.energy_kwh:.2f}" for r in results]),
        ("lower bound kWh", [f"{r.lower_bound_kwh:.2f}" for r in results]),
        ("migrations", [f"{r.migrations}" for r in results]),
        # moves of a VM that had already moved the same day (what anti-thrash cuts)
        ("repeat moves", [f"{r.extra.get('repeat_moves', 0)}" for r in results]),
        ("SLATAH %", [f"{r.slatah * 100:.2f}" for r in results]),
        ("PDM %", [f"{r.pdm * 100:.3f}" for r in results]),
        ("SLAV x1e-5", [f"{r.slav * 1e5:.2f}" for r in results]),
        ("ESV x1e-3", [f"{r.esv * 1e3:.2f}" for r in results]),
        ("host shutdowns", [f"{r.host_shutdowns}" for r in results]),
        ("memory overload %", [f"{r.mem_overload * 100:.2f}" for r in results]),
    ]
    if all("always_on_kwh" in r.extra for r in results):
        rows += [
            ("always-on kWh", [f"{r.extra['always_on_kwh']:.2f}" for r in results]),
            ("saved kWh", [f"{r.extra['saved_kwh']:.2f}" for r in results]),
            ("boot kWh", [f"{r.extra['boot_kwh']:.2f}" for r in results]),
            ("host-hours off", [f"{r.extra['host_hours_off']:.1f}" for r in results]),
            ("power-offs / wake-ups", [f"{r.extra['power_offs']} / {r.extra['wake_ups']}"
                                       for r in results]),
        ]
    if all("night_slatah" in r.extra for r in results):
        rows.append(("night SLATAH %", [f"{r.extra['night_slatah'] * 100:.3f}"
                                        for r in results]))
    rows.append(("wall s", [f"{r.wall_s:.2f}" for r in results]))
    for name, cells in rows:
        table.add_row(name, *cells)
    return table
