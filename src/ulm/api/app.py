"""`create_app(store, cfg, api, actions)`: the HTTP API and the dashboard as one ASGI app.

Errors are always `{"error": "..."}` with the status that says what went wrong: 401 (who are
you?), 403 (not allowed for your role, or a missing CSRF token), 404, 409 (the state does not
allow it now), 422 (the request cannot be right). Validation messages name the field and the
rule, never the value sent: a value may be a secret pasted into the wrong field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ulm.api.actions import ActionError, Actions
from ulm.api.auth import Authenticator, load_tokens
from ulm.api.bus import EventBus
from ulm.api.settings import ApiSettings
from ulm.api.views import Reader
from ulm.errors import UlmError
from ulm.redact import redact

log = logging.getLogger("ulm.api")

API = "/api/v1"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Context:
    store: Any
    cfg: Any
    settings: ApiSettings
    actions: Actions
    bus: EventBus
    auth: Authenticator
    reader: Reader


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ulm
    return ctx


def create_app(store: Any, cfg: Any, api: ApiSettings, actions: Actions,
               bus: EventBus | None = None, clock: Callable[[], float] = time.time,
               token_base: Path | None = None) -> FastAPI:
    """`store`: a `ulm.store.Store`; `cfg`: the `ulm.config.Config` (collect window and
    staleness, power models, hosts); `api`: the `[api]` settings, whose token files are read
    now (relative ones against `token_base`); `actions`: what changes things; `bus`: the event
    bus the daemon publishes to (a new one if None); `clock`: the daemon's notion of now."""
    from ulm.api import routes
    from ulm.web import pages

    tokens = load_tokens(api.tokens, token_base)
    if not tokens:
        log.warning("the HTTP API has no tokens configured: nobody can use it")
    app = FastAPI(title="ULM", version="1", openapi_url=f"{API}/openapi.json", docs_url=None,
                  redoc_url=None)
    bus = bus or EventBus()
    app.state.ulm = Context(store, cfg, api, actions, bus,
                            Authenticator(tokens, api.session_ttl_s),
                            Reader(store, cfg, clock, bus))
    _error_handlers(app)
    app.include_router(routes.read, prefix=API)
    app.include_router(routes.act, prefix=API)
    pages.mount(app)
    app.add_middleware(Guard)
    return app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Any:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.message, exc.headers)

    async def action_error(_: Request, exc: Exception) -> Any:
        assert isinstance(exc, ActionError)
        return _error(exc.status, redact(str(exc)))

    async def ulm_error(_: Request, exc: Exception) -> Any:
        return _error(409, redact(str(exc)))

    async def http_error(_: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def invalid(_: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        said = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()))
            said.append(f"{where}: {e.get('msg', 'invalid')}")
        return _error(422, "; ".join(said) or "invalid request")

    async def crashed(_: Request, exc: Exception) -> Any:
        log.error("API request failed: %s", redact(f"{type(exc).__name__}: {exc}"))
        return _error(500, "internal error (see the daemon's log)")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ActionError, action_error)
    app.add_exception_handler(UlmError, ulm_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, crashed)


_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # a login URL's token must not leak as a referrer
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
]


class Guard:
    """Pure ASGI (streams stay streams): security headers on every answer, and the access log
    line without the query string (`/login?token=...` must never reach a log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))  # nothing here is static

                message["headers"] = headers + _HEADERS
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            log.info("%s %s %d %.0f ms", scope["method"], scope["path"], status,
                     (time.monotonic() - started) * 1000)
