"""The dashboard: server-rendered pages (Jinja2) over the same `Reader` as the API, a login
that trades a token for a session cookie, and static files (our JS/CSS, vendored uPlot).

Pages only read. Buttons call the JSON API with `fetch` and the session's CSRF token (from the
page's meta tag), so that every change goes through the same routes, roles and checks.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ulm.api.app import Context, context
from ulm.api.auth import COOKIE, Principal, csrf_ok
from ulm.api.deps import identify
from ulm.api.hostview import RANGES, ChartRange
from ulm.api.settings import Role
from ulm.notify.events import Kind

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    if t > 1e11:
        return "open"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _pct(x: float | None) -> str:
    # + 0.0: a load that rounds to zero from below (a move's "after") shows 0 %, not -0 %
    return "-" if x is None else f"{round(x, 2) + 0.0:.0%}"


templates.env.filters["when"] = _when
templates.env.filters["pct"] = _pct
#: What the pages listen for on the event stream: the daemon's kinds and what the API did.
templates.env.globals["event_kinds"] = " ".join(
    [k.value for k in Kind] + ["plan.applied", "plan.rejected", "plan.now", "mode",
                               "maintenance.booked", "maintenance.cancelled",
                               "maintenance.undrained"])


class _Login(Exception):
    """The page needs a session: answered with a redirect to /login."""


def _render(request: Request, name: str, p: Principal, **values: Any) -> HTMLResponse:
    ctx: Context = context(request)
    values.update(me=p, mode=ctx.actions.mode(), can_act=p.role >= Role.operator,
                  is_admin=p.role >= Role.admin, csrf=p.csrf, page=name.removesuffix(".html"))
    return templates.TemplateResponse(request, name, values)


def _who(request: Request) -> Principal:
    p = identify(request)
    if p is None:
        raise _Login()
    return p


def _set_session(request: Request, sid: str) -> Response:
    resp = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https"
    resp.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=secure, path="/",
                    max_age=int(context(request).settings.session_ttl_s))
    return resp


def _login_page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": error},
                                      status_code=status)


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    async def to_login(_: Request, __: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(_Login, to_login)

    @app.get("/login", include_in_schema=False)
    def login(request: Request, token: str = "") -> Response:
        if not token:
            return _login_page(request)
        sid = context(request).auth.login(token)
        if sid is None:
            return _login_page(request, "That token is not valid.", 401)
        return _set_session(request, sid)

    @app.post("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
        sid = context(request).auth.login(form.get("token", [""])[0])
        if sid is None:
            return _login_page(request, "That token is not valid.", 401)
        return _set_session(request, sid)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode(errors="replace"))
        p = identify(request)
        if p is not None and p.via == "cookie" and csrf_ok(p, form.get("csrf", [""])[0]):
            context(request).auth.logout(request.cookies.get(COOKIE, ""))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/", include_in_schema=False)
    def overview(request: Request) -> HTMLResponse:
        p, ctx = _who(request), context(request)
        return _render(request, "overview.html", p,
                       ov=ctx.reader.overview(ctx.actions.mode()), hosts=ctx.reader.hosts(),
                       events=ctx.reader.events(0, 10).events)

    @app.get("/plans/{plan_id}", include_in_schema=False)
    def plan(request: Request, plan_id: str) -> HTMLResponse:
        p, ctx = _who(request), context(request)
        has = bool(ctx.store.plans(1))
        return _render(request, "plan.html", p,
                       plan=ctx.reader.plan(plan_id) if has or plan_id != "latest" else None,
                       plans=ctx.reader.plans(15))

    @app.get("/history", include_in_schema=False)
    def history(request: Request, offset: int = 0, about: str = "") -> HTMLResponse:
        p, ctx = _who(request), context(request)
        names = sorted({h.name for h in ctx.reader.hosts()} | {v.name for v in ctx.reader.vms()})
        return _render(request, "history.html", p, about=about, names=names,
                       events=ctx.reader.events(max(offset, 0), 50, about=about))

    @app.get("/why", include_in_schema=False)
    def why(request: Request, vm: str = "") -> HTMLResponse:
        p, ctx = _who(request), context(request)
        return _render(request, "why.html", p, vm=vm, vms=ctx.reader.vms(),
                       found=ctx.reader.decisions(vm, 100) if vm else None)

    @app.get("/hosts", include_in_schema=False)
    def hosts(request: Request, range: ChartRange = "6h") -> HTMLResponse:
        p, ctx = _who(request), context(request)
        return _render(request, "hosts.html", p, hosts=ctx.reader.hosts(),
                       vms=ctx.reader.vms(), range=range, ranges=RANGES)

    @app.get("/maintenance", include_in_schema=False)
    def maintenance(request: Request) -> HTMLResponse:
        p, ctx = _who(request), context(request)
        return _render(request, "maintenance.html", p, bookings=ctx.reader.maintenance(True),
                       hosts=ctx.reader.hosts())

    @app.get("/energy", include_in_schema=False)
    def energy(request: Request) -> HTMLResponse:
        p, ctx = _who(request), context(request)
        now = ctx.reader.clock()
        return _render(request, "energy.html", p, report=ctx.reader.energy(now - 86400, now, 0),
                       since=now - 86400, until=now)
