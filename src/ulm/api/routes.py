"""`/api/v1/...`: read routes (viewer), act routes (operator; the mode switch is admin's).

Sync handlers on purpose: the store is synchronous SQLAlchemy and an apply migrates for
minutes; FastAPI runs them in its worker threads, the event loop stays free for the stream.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from ulm.api import models as m
from ulm.api.actions import BookingRequest, BookingResult
from ulm.api.app import ApiError, context
from ulm.api.auth import Principal
from ulm.api.deps import admin, operator, viewer
from ulm.cli.times import parse_time
from ulm.errors import UlmError

E = {401: {"model": m.ErrorOut}, 403: {"model": m.ErrorOut}, 404: {"model": m.ErrorOut},
     409: {"model": m.ErrorOut}, 422: {"model": m.ErrorOut}}
read = APIRouter(responses=E)  # type: ignore[arg-type]
act = APIRouter(responses=E)  # type: ignore[arg-type]

Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]
Admin = Annotated[Principal, Depends(admin)]
Limit = Annotated[int, Query(ge=1, le=500)]


def _time(text: str | None, default: float, what: str, now: float | None = None) -> float:
    """A query's time: as the command line's (`ulm.cli.times`: `-6h`, epoch seconds, ISO in
    UTC unless it names a zone), finite and between 2000 and 2100, else 422."""
    if text is None or text == "":
        return default
    try:
        return parse_time(text, default if now is None else now, what, utc=True)
    except UlmError as exc:
        raise ApiError(422, f"query.{exc}") from None


def _since(r: Any, since: str | None) -> float:
    """A chart's start: before now (a day ago by default)."""
    now = r.clock()
    t0 = _time(since, now - 86400, "since", now)
    if t0 >= now:
        raise ApiError(422, f"query.since {since!r}: must be before now")
    return t0


# -- read ------------------------------------------------------------------------------------

@read.get("/whoami")
def whoami(p: Viewer) -> m.WhoAmI:
    return m.WhoAmI(name=p.name, role=p.role.name, via=p.via)


@read.get("/overview")
def overview(request: Request, _: Viewer) -> m.OverviewOut:
    ctx = context(request)
    return ctx.reader.overview(ctx.actions.mode())


@read.get("/hosts")
def hosts(request: Request, _: Viewer) -> list[m.HostOut]:
    return context(request).reader.hosts()


@read.get("/hosts/{name}/cpu")
def host_cpu(request: Request, name: str, _: Viewer, since: str | None = None) -> m.CpuSeries:
    """The host's CPU busy, at most 1,000 points from `since` to now (bucket means)."""
    r = context(request).reader
    return r.host_cpu(name, _since(r, since))


@read.get("/hosts/{name}/mem")
def host_mem(request: Request, name: str, _: Viewer, since: str | None = None) -> m.MemSeries:
    """The host's memory in use (MiB and fraction of its memory), as `cpu`."""
    r = context(request).reader
    return r.host_mem(name, _since(r, since))


@read.get("/vms")
def vms(request: Request, _: Viewer, host: str = "") -> list[m.VMOut]:
    return context(request).reader.vms(host)


@read.get("/plans")
def plans(request: Request, _: Viewer, limit: Limit = 20) -> list[m.PlanSummary]:
    return context(request).reader.plans(limit)


@read.get("/plans/{plan_id}")
def plan(request: Request, plan_id: str, _: Viewer) -> m.PlanDetail:
    return context(request).reader.plan(plan_id)


@read.get("/decisions")
def decisions(request: Request, _: Viewer, vm: Annotated[str, Query(min_length=1)],
              limit: Limit = 50) -> m.DecisionsOut:
    return context(request).reader.decisions(vm, limit)


@read.get("/maintenance")
def maintenance(request: Request, _: Viewer, all: bool = False) -> list[m.BookingOut]:
    return context(request).reader.maintenance(all)


@read.get("/energy")
def energy(request: Request, _: Viewer, since: str | None = None, until: str | None = None,
           step: Annotated[float, Query(ge=0)] = 0.0) -> m.EnergyOut:
    r = context(request).reader
    now = r.clock()
    t0, t1 = _time(since, now - 86400, "since", now), _time(until, now, "until", now)
    if t1 <= t0:
        raise ApiError(422, "query.until: must be after since")
    if step and (t1 - t0) / step > 1000:
        raise ApiError(422, "query.step: at most 1000 buckets")
    return r.energy(t0, t1, step)


@read.get("/events")
def events(request: Request, _: Viewer, offset: Annotated[int, Query(ge=0)] = 0,
           limit: Limit = 50, kind: str = "", about: str = "") -> m.EventsPage:
    return context(request).reader.events(offset, limit, kind, about)


@read.get("/mode")
def mode(request: Request, _: Viewer) -> m.MessageOut:
    return m.MessageOut(message=context(request).actions.mode())


@read.get("/stream", response_class=StreamingResponse,
          responses={200: {"content": {"text/event-stream": {}}}})
def stream(request: Request, _: Viewer,
           last_event_id: Annotated[str, Header()] = "") -> StreamingResponse:
    """Server-Sent Events: every event the daemon and the API publish, as it happens."""
    after = int(last_event_id) if last_event_id.isdigit() else 0
    return StreamingResponse(context(request).bus.subscribe(after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# -- act -------------------------------------------------------------------------------------

@act.post("/plans/{plan_id}/apply")
def apply(request: Request, plan_id: str, body: m.ApplyIn, p: Operator) -> m.ApplyOut:
    ctx = context(request)
    r = ctx.actions.apply_plan(ctx.reader.resolve(plan_id), body.skip, p.name)
    return m.ApplyOut(plan_id=r.plan_id, status=r.status,
                      outcomes=[m.ActionOutcomeOut(seq=o.seq, kind=o.kind, status=o.status,
                                                   detail=o.detail) for o in r.outcomes])


@act.post("/plans/{plan_id}/reject")
def reject(request: Request, plan_id: str, body: m.RejectIn, p: Operator) -> m.MessageOut:
    ctx = context(request)
    pid = ctx.reader.resolve(plan_id)
    ctx.actions.reject_plan(pid, body.reason, p.name)
    return m.MessageOut(message=f"plan {pid} rejected")


def _booked(r: BookingResult) -> m.BookingResultOut:
    return m.BookingResultOut(id=r.id, status=r.status, detail=r.detail)


@act.post("/maintenance", status_code=201)
def book(request: Request, body: m.BookingIn, p: Operator) -> m.BookingResultOut:
    req = BookingRequest(body.host, body.start, body.end, body.power_off, body.reason,
                         body.return_home)
    return _booked(context(request).actions.book(req, p.name))


@act.delete("/maintenance/{booking_id}")
def cancel(request: Request, booking_id: int, p: Operator) -> m.MessageOut:
    return m.MessageOut(message=context(request).actions.cancel_booking(booking_id, p.name))


@act.post("/hosts/{name}/drain", status_code=201)
def drain(request: Request, name: str, body: m.DrainIn, p: Operator) -> m.BookingResultOut:
    return _booked(context(request).actions.drain(name, body.power_off, p.name))


@act.post("/hosts/{name}/undrain")
def undrain(request: Request, name: str, p: Operator) -> m.MessageOut:
    return m.MessageOut(message=context(request).actions.undrain(name, p.name))


@act.put("/mode")
def set_mode(request: Request, body: m.ModeIn, p: Admin) -> m.ModeOut:
    was = context(request).actions.set_mode(body.mode, p.name)
    return m.ModeOut(mode=body.mode, was=was)


@act.post("/plan-now")
def plan_now(request: Request, p: Operator, body: m.PlanNowIn | None = None) -> m.PlanNowOut:
    """A round now; with `dry_run` (or a `policy`): the plan only, neither stored nor applied."""
    want = body or m.PlanNowIn()
    r = context(request).actions.plan_now(p.name, want.dry_run, want.policy)
    return m.PlanNowOut(plan_id=r.plan_id, actions=r.actions, problems=list(r.problems),
                        dry_run=r.dry_run, policy=r.policy,
                        action_list=[m.ActionOut(seq=i, kind=a["kind"], vm=a.get("vm", ""),
                                                 src=a.get("src", ""), dst=a.get("dst", ""),
                                                 host=a.get("host", ""),
                                                 reason=a.get("reason", ""),
                                                 mem_mib=float(a.get("mem_mib") or 0.0))
                                     for i, a in enumerate(r.action_list, 1)])
