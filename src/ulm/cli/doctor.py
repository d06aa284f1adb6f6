"""`ulm doctor`: a table of what answers in a deployment (store, hosts, munin, BMCs, clocks)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ulm import doctor
from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.config import load_config
from ulm.jsonout import dumps


@app.command("doctor")
@user_errors
def doctor_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="ulm.toml")],
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Check a deployment: every host's libvirt URI, munin, BMC, the store and its clock.

    Read-only; exit status 1 when anything does not answer."""
    checks = doctor.run(load_config(config))
    if fmt is Format.json:
        print(dumps([asdict(c) for c in checks], indent=2))
    else:
        table = Table("component", "target", "status", "detail", "time", title="ulm doctor")
        for c in checks:
            table.add_row(c.component, escape(c.target), "[green]ok[/]" if c.ok else "[red]FAIL[/]",
                          escape(c.detail), f"{c.seconds * 1000:.0f} ms")
        console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
