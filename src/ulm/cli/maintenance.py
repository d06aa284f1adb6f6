"""`ulm maintenance add|list|cancel`, `ulm drain`, `ulm undrain`: scheduled downtime."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from ulm.budget import day_start
from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.cli.run import ConfigOpt
from ulm.cli.times import parse_time, show_time
from ulm.config import Config, load_config
from ulm.errors import UlmError
from ulm.jsonout import dumps
from ulm.policy import resolve_policy
from ulm.scheduler import check_drain
from ulm.store import Store

maint_app = typer.Typer(help="Scheduled downtime: drain a host live before, bring it back after.",
                        no_args_is_help=True)
app.add_typer(maint_app, name="maintenance")

FOREVER_S = 10 * 365 * 86400.0  # an unplanned drain: open-ended, ended by `ulm undrain`


def _check(cfg: Config, store: Store, host: str, now: float,
           start: float | None = None) -> tuple[bool, str]:
    policy = resolve_policy(cfg.policy_ref())
    snap = store.snapshot(now, cfg.collect.window, cfg.collect.stale_s,
                          day_start=day_start(policy, now))
    if host not in snap.host_index:
        return True, f"{host} has not been seen yet: the drain is checked when it is"
    report = check_drain(snap, policy, host, now, store.migration_speed(),
                         at=max(start or now, now))
    return report.fits, report.summary()


def book(cfg: Config, host: str, start: float, end: float, power_off: bool,
         reason: str, return_home: bool = False) -> int:
    cfg.require_host(host)  # before the store is opened: a typo changes nothing
    if end <= start:
        raise UlmError("--end must be after --start")
    now = time.time()
    if end <= now:
        raise UlmError("--end is in the past: that window is over already")
    store = Store.open(cfg.store.url, mode="write")
    for b in store.bookings(active_only=True):
        if b.host == host and b.start < end and start < b.end:
            raise UlmError(f"{host} already has maintenance #{b.id} in that time")
    fits, summary = _check(cfg, store, host, now, start)
    booking = store.book(host, start, end, power_off, reason, "booked" if fits else "blocked",
                         summary if fits else summary + "; nothing will be powered off",
                         return_home)
    style = "green" if fits else "bold red"
    console.print(f"maintenance #{booking} booked for {host}: [{style}]{summary}[/]")
    return booking


@maint_app.command("add")
@user_errors
def add(config: ConfigOpt, host: str,
        start: Annotated[str, typer.Option(help="now, +2h, or 2026-12-01T22:00")],
        end: Annotated[str, typer.Option(help="+4h, or 2026-12-02T02:00")],
        power_off: Annotated[bool, typer.Option("--power-off")] = False,
        reason: Annotated[str, typer.Option()] = "",
        return_home: Annotated[bool, typer.Option(
            "--return-home", help="Bring its VMs back afterwards.")] = False) -> None:
    """Book downtime: the host is drained live before START, powered off if asked, and
    brought back after END. Says at once whether the drain fits."""
    now = time.time()
    book(load_config(config), host, parse_time(start, now, "--start"),
         parse_time(end, now, "--end"), power_off, reason, return_home)


@maint_app.command("list")
@user_errors
def list_cmd(config: ConfigOpt, all_: Annotated[bool, typer.Option("--all")] = False,
             fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Bookings (active ones unless --all)."""
    rows = Store.open(load_config(config).store.url, mode="read").bookings(active_only=not all_)
    if fmt is Format.json:
        # A non-finite time (a row written before times were checked) would make invalid JSON.
        print(dumps([{k: None if isinstance(v, float) and not math.isfinite(v) else v
                           for k, v in asdict(b).items()} for b in rows], indent=2))
        return
    table = Table("#", "host", "start", "end", "power off", "status", "detail", "reason")
    for b in rows:
        end = "open" if b.end - b.start >= FOREVER_S - 1 else show_time(b.end)  # `ulm drain`
        table.add_row(str(b.id), b.host, show_time(b.start), end,
                      "yes" if b.power_off else "no", b.status, b.detail, b.reason)
    console.print(table)


@maint_app.command("cancel")
@user_errors
def cancel(config: ConfigOpt, booking: int) -> None:
    """Cancel a booking; a host already drained or down is brought back by the daemon."""
    store = Store.open(load_config(config).store.url, mode="write")
    current = next((b for b in store.bookings() if b.id == booking), None)
    if current is None:
        raise UlmError(f"no maintenance booking #{booking}")
    if current.status in ("draining", "down"):
        store.set_booking_end(booking, time.time())  # the daemon returns the host
        console.print(f"#{booking}: ended now; the daemon brings {current.host} back")
    else:
        store.set_booking(booking, "cancelled", "cancelled by the admin")
        console.print(f"#{booking} cancelled")


@app.command("drain")
@user_errors
def drain(config: ConfigOpt, host: str,
          power_off: Annotated[bool, typer.Option("--power-off")] = False) -> None:
    """Empty a host live now, for unplanned work (open-ended; `ulm undrain` ends it)."""
    now = time.time()
    book(load_config(config), host, now, now + FOREVER_S, power_off, "ulm drain")


@app.command("undrain")
@user_errors
def undrain(config: ConfigOpt, host: str) -> None:
    """End the drain or maintenance of a host now: the daemon reopens it."""
    load_config(config).require_host(host)  # a typo is not "not drained"
    store = Store.open(load_config(config).store.url, mode="write")
    active = [b for b in store.bookings(active_only=True) if b.host == host]
    if not active:
        raise UlmError(f"{host} is not drained")
    for b in active:
        if b.status in ("booked", "blocked"):
            store.set_booking(b.id, "cancelled", "undrain")
        else:
            store.set_booking_end(b.id, time.time())
    console.print(f"{host}: drain ended; the daemon reopens it")
