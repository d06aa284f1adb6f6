"""Who is asking: bearer tokens (API clients) and browser sessions (cookie + CSRF token).

Tokens are read from files once, kept only as SHA-256 digests, and compared with
`hmac.compare_digest` against every configured token (no early exit, no length leak), so the
time an answer takes says nothing about how close a guess was. A browser logs in once with a
token (`/login?token=...`, as Jupyter does) and then holds a random session id in an HttpOnly,
SameSite=Strict cookie: the token itself never goes back to the browser. Requests that change
something with that cookie must also carry the session's CSRF token; bearer requests need none
(a foreign page cannot make a browser send an Authorization header).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ulm.api.settings import Role, TokenConfig
from ulm.errors import UlmError

COOKIE = "ulm_session"
CSRF_HEADER = "x-csrf-token"
MIN_TOKEN_LEN = 16


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    via: str  # "bearer" | "cookie"
    csrf: str = ""  # the session's CSRF token (cookie logins only)


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    role: Role
    digest: bytes


@dataclass(slots=True)
class _Session:
    name: str
    role: Role
    csrf: str
    expires: float


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def load_tokens(tokens: Sequence[TokenConfig], base: Path | None = None) -> list[_Token]:
    out = []
    for t in tokens:
        path = Path(t.token_file)
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise UlmError(f"api token {t.name!r}: cannot read {path}: {exc.strerror}") from None
        if len(text) < MIN_TOKEN_LEN:  # the message names the file, never its content
            raise UlmError(f"api token {t.name!r}: {path} holds fewer than {MIN_TOKEN_LEN} "
                           "characters")
        out.append(_Token(t.name, t.level, _digest(text)))
    return out


class Authenticator:
    def __init__(self, tokens: Sequence[_Token], session_ttl_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._tokens = list(tokens)
        self._ttl = session_ttl_s
        self._clock = clock  # wall time: sessions expire in real time, whatever the daemon's
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def check_token(self, token: str) -> _Token | None:
        given = _digest(token)
        found = None
        for t in self._tokens:  # all of them, always: the loop's length is no hint
            if hmac.compare_digest(given, t.digest):
                found = t
        return found

    def bearer(self, header: str) -> Principal | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        t = self.check_token(token.strip())
        return None if t is None else Principal(t.name, t.role, "bearer")

    def login(self, token: str) -> str | None:
        """A new session id for a valid token, else None."""
        t = self.check_token(token)
        if t is None:
            return None
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            for k in [k for k, s in self._sessions.items() if s.expires < now]:
                del self._sessions[k]
            self._sessions[sid] = _Session(t.name, t.role, secrets.token_urlsafe(24),
                                           now + self._ttl)
        return sid

    def session(self, sid: str) -> Principal | None:
        with self._lock:
            s = self._sessions.get(sid)
            if s is None or s.expires < self._clock():
                return None
            return Principal(s.name, s.role, "cookie", s.csrf)

    def logout(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)


def csrf_ok(principal: Principal, given: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), principal.csrf.encode())

