"""The daemon's store lock, held for as long as the process acts.

A lock renewed only between rounds expires under a long round (a migration of many minutes),
and a second daemon may then start and act beside the first. So a heartbeat thread renews it
every few seconds over its own database connection, and tells the daemon at once when the
lock is no longer confirmed: the store failed (renewal raised) or someone else holds it.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("ulm.daemon")

#: What a store that cannot be written raises: disk full, read-only, database gone.
STORE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)


class LockStore(Protocol):
    def refresh_lock(self, owner: str, ttl_s: float, name: str = ...) -> bool: ...

    def lock_holder(self, name: str = ...) -> tuple[str, float] | None: ...


class LockState(enum.StrEnum):
    held = "held"
    unconfirmed = "unconfirmed"  # the renewal failed on a store error: may come back
    lost = "lost"  # someone else holds it (or it is gone): never comes back


def describe(owner: str) -> str:
    """`host:pid` as words, for the messages that name a lock's holder."""
    host, _, pid = owner.rpartition(":")
    return f"pid {pid} on {host}" if host and pid.isdigit() else owner


class LockKeeper:
    def __init__(self, store: LockStore, owner: str, ttl_s: float, every_s: float,
                 on_change: Callable[[LockState, str], None]) -> None:
        self.store = store
        self.owner = owner
        self.ttl_s = ttl_s
        self.every_s = every_s
        self.on_change = on_change  # (new state, why): called from the heartbeat thread
        self.state = LockState.held
        self.why = ""
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self.state is LockState.held

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ulm-lock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s + 15.0)

    def _run(self) -> None:
        while not self._halt.wait(self.every_s):
            self.renew()

    def renew(self) -> None:
        if self.state is LockState.lost:
            return
        try:
            if self.store.refresh_lock(self.owner, self.ttl_s):
                self._set(LockState.held, "")
                return
            holder = self.store.lock_holder()
        except STORE_ERRORS as exc:
            self._set(LockState.unconfirmed, one_line(exc))
            return
        self._set(LockState.lost, "taken by " + describe(holder[0]) if holder
                  else "its row was removed")

    def _set(self, state: LockState, why: str) -> None:
        if state is self.state:
            return
        self.state, self.why = state, why
        self.on_change(state, why)


def one_line(exc: BaseException) -> str:
    """A database error as one line: SQLAlchemy appends the statement and a help link."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
