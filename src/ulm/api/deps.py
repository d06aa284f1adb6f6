"""Route dependencies: who is asking (bearer or session cookie), and may they do this."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from ulm.api.app import ApiError, context
from ulm.api.auth import COOKIE, CSRF_HEADER, Principal, csrf_ok
from ulm.api.settings import Role

SAFE = ("GET", "HEAD", "OPTIONS")


def identify(request: Request) -> Principal | None:
    auth = context(request).auth
    header = request.headers.get("authorization", "")
    if header:  # a bearer header that is wrong is wrong: no falling back to the cookie
        return auth.bearer(header)
    sid = request.cookies.get(COOKIE, "")
    return auth.session(sid) if sid else None


def check(request: Request, p: Principal | None, role: Role, form_csrf: str = "") -> Principal:
    if p is None:
        raise ApiError(401, "authentication required: Authorization: Bearer TOKEN",
                       {"WWW-Authenticate": 'Bearer realm="ulm"'})
    if p.role < role:
        raise ApiError(403, f"{p.name} is {p.role.name}; this needs {role.name}")
    if p.via == "cookie" and request.method not in SAFE:
        given = request.headers.get(CSRF_HEADER, "") or form_csrf
        if not csrf_ok(p, given):
            raise ApiError(403, "missing or wrong CSRF token (X-CSRF-Token)")
    return p


def require(role: Role) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        return check(request, identify(request), role)

    return dependency


viewer = require(Role.viewer)
operator = require(Role.operator)
admin = require(Role.admin)
