"""`ulm report energy`: kWh used, kWh an always-on cluster would have used, kWh saved."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import Annotated

import typer
from rich.table import Table

from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.cli.run import ConfigOpt
from ulm.cli.times import parse_time
from ulm.config import load_config
from ulm.energy import account
from ulm.errors import UlmError
from ulm.jsonout import dumps
from ulm.store import Store

report_app = typer.Typer(help="Reports from what ULM saw and did.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("energy")
@user_errors
def energy(config: ConfigOpt,
           since: Annotated[str, typer.Option(help="ISO time, or -24h style offsets")] = "-24h",
           until: Annotated[str, typer.Option()] = "now",
           fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Energy used and saved by powering hosts off: BMC power readings where a BMC meters,
    elsewhere the hosts' power models at their sampled CPU; power events for the time off."""
    cfg = load_config(config)
    now = time.time()
    t0 = parse_time(since, now, "--since")
    t1 = parse_time(until, now, "--until")
    if t1 > now:  # the last sample would be counted as holding through time not yet lived
        print(f"note: --until {until} is in the future: the report ends now", file=sys.stderr)
        t1 = now
    if t0 >= t1:
        raise UlmError(f"--since {since} is not before --until {until}: the window is empty "
                       "or reversed")
    store = Store.open(cfg.store.url, mode="read")
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in store.host_samples(0.0):
        if s.cpu is not None and s.ts <= t1:
            samples[s.name].append((s.ts, s.cpu))
    events = [(e["ts"], e["host"], e["action"]) for e in store.power_events()
              if e["result"] == "done" and e["ts"] <= t1]
    # A raw reading holds for two metering intervals (one missed reading is bridged), a
    # downsampled one for its bucket.
    hold = 2 * cfg.collect.power_interval_s
    readings = {h: [(ts, w, res or hold) for ts, w, res in rows if ts <= t1]
                for h, rows in store.power_readings(0.0).items()}
    report = account(t0, t1, samples, events, cfg.curves(), readings)
    if fmt is Format.json:
        print(dumps(report.to_dict(), indent=2))
        return
    table = Table("host", "kWh", "always-on kWh", "hours off", "power cycles", "metered h")
    for h in report.hosts:
        table.add_row(h.host, f"{h.kwh:.3f}", f"{h.always_on_kwh:.3f}", f"{h.hours_off:.2f}",
                      str(h.power_cycles), f"{h.metered_hours:.2f}")
    console.print(table)
    console.print(f"used {report.kwh:.3f} kWh, always-on {report.always_on_kwh:.3f} kWh, "
                  f"saved {report.saved_kwh:.3f} kWh")
