"""`ulm export samples`: a recorded day as a trace that `ulm simulate --trace` replays."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ulm.cli import app
from ulm.cli.common import err_console, user_errors
from ulm.cli.run import ConfigOpt
from ulm.cli.times import parse_time
from ulm.config import load_config
from ulm.errors import UlmError
from ulm.export import DAY_S, day_trace, exportable
from ulm.store import Store

export_app = typer.Typer(help="What ULM recorded, in formats other tools read.",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("samples")
@user_errors
def samples_cmd(
    config: ConfigOpt,
    since: Annotated[str, typer.Option(help="Start of the day: ISO time or -24h style")] = "-24h",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here (a new "
                      "file, .csv.gz) instead of standard output.")] = None,
) -> None:
    """24 hours of VM CPU and memory from --since, as a GCD-format trace (gzip'd CSV)."""
    now = time.time()
    start = parse_time(since, now, "--since")
    if start + DAY_S > now:
        raise UlmError(f"--since {since}: the day it starts ends in the future; "
                       "a trace is 24 complete hours")
    cfg = load_config(config)
    store = Store.open(cfg.store.url, mode="read")
    try:
        sizes = store.vm_sizes()
        data = day_trace(start, store.vm_samples(start, start + DAY_S), sizes)
    finally:
        store.close()
    left_out = sorted(n for n in sizes if not exportable(n))
    if left_out:
        err_console.print(f"{len(left_out)} VM(s) left out: their names contain a comma or a "
                          "line break, which the trace format cannot hold", markup=False)
    if output is None:
        if sys.stdout.isatty():
            raise UlmError("the trace is gzip'd binary: redirect it (> day.csv.gz) or give "
                           "--output")
        sys.stdout.buffer.write(data)
        return
    try:  # a new file only: ULM never overwrites a file it did not make
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UlmError(f"{output}: exists already; give a new file name") from None
    except OSError as exc:
        raise UlmError(f"{output}: cannot create: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
