"""`ulm run`, `ulm status`, `ulm plans`, `ulm apply`: the daemon and what it stored."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ulm.api.settings import ApiSettings
from ulm.cli import app
from ulm.cli.common import Format, console, user_errors
from ulm.cli.plan import render_plan
from ulm.config import Config, load_config
from ulm.daemon import Mode
from ulm.errors import UlmError
from ulm.jsonout import dumps
from ulm.metrics import Metrics
from ulm.model import VM, HostState, VmState
from ulm.runtime import LogFormat, build, daemon, setup_logging
from ulm.store import Store
from ulm.store.store import plan_from_body

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="ulm.toml")]


def _store(cfg: Config) -> Store:
    return Store.open(cfg.store.url, mode="read")


@app.command("run")
@user_errors
def run_cmd(
    config: ConfigOpt,
    mode: Annotated[Mode, typer.Option(help="observe: collect only; advise: store plans; "
                                            "enforce: execute them.")] = Mode.advise,
    once: Annotated[bool, typer.Option(help="One round, then exit.")] = False,
    rounds: Annotated[int | None, typer.Option(
        min=1, help="Run this many rounds (at least 1), then exit.")] = None,
    log_format: Annotated[LogFormat, typer.Option(help="text or json")] = LogFormat.text,
    metrics: Annotated[str | None, typer.Option(
        help="Serve /metrics on HOST:PORT (:PORT is 127.0.0.1:PORT).")] = None,
    http: Annotated[str | None, typer.Option(
        help="Serve the HTTP API and dashboard on HOST:PORT (default: [api] listen, if "
             "[api] is given).")] = None,
    standby: Annotated[bool, typer.Option(
        "--standby", help="If another daemon leads this store, wait to take over from it "
                          "instead of refusing to start (default: [ha] standby).")] = False,
) -> None:
    """Run the daemon: every interval collect, plan, and (in enforce mode) migrate."""
    if once and rounds is not None:
        raise UlmError("give --once or --rounds N, not both")
    setup_logging(log_format)
    cfg = load_config(config)
    if standby:
        cfg = cfg.model_copy(update={"ha": cfg.ha.model_copy(update={"standby": True})})
    served = None
    if metrics is not None:  # before anything connects: a taken port stops the start here
        served = Metrics()
        served.serve(metrics)
    api = cfg.api
    if http is not None:
        api = (api or ApiSettings()).model_copy(update={"listen": http})
        api = ApiSettings.model_validate(api.model_dump())  # the listen address checked
    rt = build(cfg, store_mode="create")
    d = daemon(rt, mode)
    d.metrics = served
    d.install_signals()
    sinks, notes = _notify(rt.cfg)
    bus = _bus(rt, sinks)
    web = _serve_api(d, rt, api, bus) if api is not None else None
    _attach(d, sinks)
    try:
        code = d.run(rounds=1 if once else rounds)
    finally:
        if web is not None:
            web[0].should_exit = True
            web[1].join(10)
        if notes is not None:
            notes.close()  # what is queued gets its last chance
        bus.close()  # the events not written yet are
        rt.close()
    if code:  # the lock was lost to another daemon (logged): not a clean stop
        raise typer.Exit(code)


def _notify(cfg: Config) -> tuple[list[Any], Any]:
    """The `[notify]` dispatcher (None without targets) and the event sinks so far."""
    from ulm.notify import build as build_notify

    if not cfg.notify.webhooks and not cfg.notify.email:
        return [], None
    notes = build_notify(cfg.notify)
    return [notes.publish], notes


def _attach(d: Any, sinks: list[Any]) -> None:
    """The daemon's events (rounds, plans, outcomes, conditions, bookings) to the sinks."""
    if sinks:
        from ulm.notify.wire import attach
        attach(d, sinks)


def _bus(rt: Any, sinks: list[Any]) -> Any:
    """The event bus, writing the daemon's events to the store (with or without the API:
    History shows them once it is on), joins `sinks`."""
    from ulm.api.bus import EventBus  # no web framework needed for that
    from ulm.notify.wire import to_bus

    bus = EventBus(store=rt.store)
    sinks.append(to_bus(bus))
    return bus


def _serve_api(d: Any, rt: Any, api: ApiSettings, bus: Any) -> tuple[Any, Any]:
    """The API and dashboard beside the daemon's loop, sharing its store, round lock and
    event bus."""
    from ulm.api import create_app
    from ulm.api.local import DaemonActions
    from ulm.api.serve import start_in_thread

    base = Path(rt.cfg.source_path).parent if rt.cfg.source_path else None
    app = create_app(rt.store, rt.cfg, api, DaemonActions(d, bus, d.round_lock), bus,
                     clock=d.clock.now, token_base=base)
    return start_in_thread(app, api)


@app.command("status")
@user_errors
def status_cmd(config: ConfigOpt,
               fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Who leads, hosts and VMs with their current load, from the store."""
    cfg = load_config(config)
    store = _store(cfg)
    now = time.time()
    snap = store.snapshot(now, cfg.collect.window, cfg.collect.stale_s)
    if fmt is Format.json:
        from ulm.snapshot_json import snapshot_to_dict
        print(dumps(snapshot_to_dict(snap), indent=2))
        return
    console.print(leadership(store, now), highlight=False)
    seen = store.last_seen()
    if not _leads(store, now) and seen:
        console.print(f"No daemon is running on this store: the figures are the last ones "
                      f"collected, at {_at(max(seen.values()))}", highlight=False)
    hosts = Table("host", "state", "CPU", "memory", "VMs", title="Hosts")
    util = {h.name: 0.0 for h in snap.hosts}
    for v in snap.vms:
        util[v.host] += v.load.cpu
    for h, why in zip(snap.hosts, snap.host_quarantine, strict=True):
        measured = (f" (host {h.cpu_history[-1]:.0%}{', stale' if h.stale else ''})"
                    if h.cpu_history else " (host figure stale)" if h.stale else "")
        names = [v.name for v in snap.vms if v.host == h.name]
        state = f"{h.state.value}, quarantined: {why}" if why else h.state.value
        if h.state is HostState.UNKNOWN and h.name in seen:  # say what is known of it
            state += f" (last seen {_at(seen[h.name])}, {max(now - seen[h.name], 0):.0f} s ago)"
        hosts.add_row(h.name, state, f"{util[h.name] / h.capacity.cpu:.0%}{measured}",
                      f"{h.capacity.mem_mib:.0f} MiB", ", ".join(names) or "-")
    console.print(hosts)
    vms = Table("VM", "host", "vCPUs", "CPU", "memory", "note", title="VMs")
    for v in snap.vms:
        vms.add_row(v.name, v.host, str(v.vcpus), f"{v.load.cpu:.2f}",
                    f"{v.size.mem_mib:.0f} MiB",
                    _vm_note(v))
    console.print(vms)


def _vm_note(v: VM) -> str:
    """What `ulm status` says of a VM beside its figures: gone, not running, stale."""
    if v.gone:
        return "gone: no reachable host lists it"
    notes = [] if v.state is VmState.RUNNING else [f"{v.state.value}: ULM does not move it"]
    return ", ".join(notes + (["stale"] if v.stale else []))


def _at(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _leads(store: Store, now: float) -> bool:
    """A daemon holds a live lease on the store."""
    from ulm.store.lease import holder

    h = holder(store.engine)
    return h is not None and h.live(now)


def leadership(store: Store, now: float) -> str:
    """One line: which controller leads (epoch, since when) and which standbys wait."""
    from ulm.lockkeeper import describe
    from ulm.store.lease import holder, standbys

    at = _at
    h = holder(store.engine)
    if h is None:
        text = "Leader: none (no daemon has run on this store)"
    elif h.live(now):
        text = (f"Leader: {describe(h.owner)}, epoch {h.epoch}, since {at(h.since)} (lease "
                f"renewed {max(now - h.renewed_at, 0):.0f} s ago)")
    else:
        text = (f"Leader: none since {at(h.expires_at)} (the last one: {describe(h.owner)}, "
                f"epoch {h.epoch})")
    waiting = standbys(store.engine, now)
    return text + "; standby: " + (", ".join(f"{describe(s.owner)} waiting since {at(s.since)}"
                                             for s in waiting) or "none")


@app.command("plans")
@user_errors
def plans_cmd(config: ConfigOpt,
              limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
              fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Stored plans, newest first."""
    records = _store(load_config(config)).plans(limit)
    if fmt is Format.json:
        print(dumps([asdict(r) for r in records], indent=2))
        return
    table = Table("plan", "created", "mode", "status", "actions", "problems")
    for r in records:
        table.add_row(r.id, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)),
                      r.mode, r.status, str(len(r.plan["actions"])),
                      str(len(r.plan["problems"])))
    console.print(table)


@app.command("apply")
@user_errors
def apply_cmd(config: ConfigOpt, plan_id: str,
              log_format: Annotated[LogFormat, typer.Option(help="text or json")] = LogFormat.text
              ) -> None:
    """Apply an advised plan: every action is re-checked against live state first."""
    setup_logging(log_format)
    cfg = load_config(config)
    rt = build(cfg)
    try:
        record = rt.store.plan(plan_id)
        if record.status != "proposed":
            raise UlmError(f"plan {plan_id} is {record.status}, not proposed: nothing applied")
        plan = plan_from_body(record.plan)
        d = daemon(rt, Mode.enforce)
        d.standby = False  # a one-off apply never waits for the lead ([ha] standby)
        d.start()
        try:
            if not d.acting:  # the store takes no writes (logged): no journal, no lock
                raise UlmError(f"plan {plan_id} not applied: the store takes no writes")
            d.collect(time.time())  # the re-checks need a fresh picture
            result = d.apply(plan, plan_id)
        finally:
            d.release()
        render_plan(plan)
        for o in result.outcomes:
            console.print(f"{o.status.value:8} {o.action.kind}: {o.detail}")
        if any(o.status.value == "failed" for o in result.outcomes):
            raise typer.Exit(1)
    finally:
        rt.close()


@app.command("explain")
@user_errors
def explain_cmd(config: ConfigOpt,
                plan_id: Annotated[str | None, typer.Argument(help="Default: the newest.")] = None
                ) -> None:
    """Show a stored plan with its decision explanation and what happened to each action."""
    store = _store(load_config(config))
    if plan_id is None:
        records = store.plans(1)
        if not records:
            raise UlmError("no plan in the store yet")
        plan_id = records[0].id
    record = store.plan(plan_id)
    console.print(f"[bold]{record.id}[/] ({record.mode}, {record.status})")
    render_plan(plan_from_body(record.plan))
    for o in store.outcomes(plan_id):
        what = f"{o['vm']} {o['src']} -> {o['dst']}" if o["kind"] == "move" else o["host"]
        took = o["finished_at"] - o["started_at"]
        console.print(f"outcome: {o['kind']} {what}: {o['status']} in {took:.1f} s"
                      f"{' — ' + o['detail'] if o['detail'] else ''}")
