"""The daemon's lease (`ulm.store.lease`), held for as long as the process acts.

A lease renewed only between rounds expires under a long round (a migration of many
minutes), and a standby may then take over and act beside the first. So a heartbeat thread
renews it every few seconds over its own database connection, and tells the daemon at once
when the lease is no longer confirmed: the store failed (renewal raised), the store does not
answer before the lease runs out by this process's own clock (a database cut off without a
reset: the renewal hangs), or another controller holds it.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from ulm.store.lease import Lease, holder

log = logging.getLogger("ulm.daemon")

#: What a store that cannot be written raises: disk full, read-only, database gone.
STORE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)


class LockState(enum.StrEnum):
    held = "held"
    unconfirmed = "unconfirmed"  # the renewal failed or hangs: may come back
    lost = "lost"  # someone else holds it (or it is gone): never comes back


def describe(owner: str) -> str:
    """`host:pid` as words, for the messages that name a lease's holder."""
    host, _, pid = owner.rpartition(":")
    return f"pid {pid} on {host}" if host and pid.isdigit() else owner


class LockKeeper:
    def __init__(self, lease: Lease, every_s: float,
                 on_change: Callable[[LockState, str], None]) -> None:
        self.lease = lease
        self.every_s = every_s
        self.on_change = on_change  # (new state, why): called from the heartbeat threads
        self.state = LockState.held
        self.why = ""
        self._halt = threading.Event()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Confirmed, and not run out by this process's clock (a hung renewal says nothing)."""
        return self.state is LockState.held and self.lease.valid()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ulm-lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s + 15.0)

    def _run(self) -> None:
        while not self._halt.wait(self.every_s):
            # The renewal runs beside this loop: one that hangs (no answer from a database
            # cut off) must not keep the daemon from learning its lease ran out.
            worker = threading.Thread(target=self.renew, name="ulm-lease-renew", daemon=True)
            worker.start()
            while worker.is_alive() and not self._halt.wait(min(0.5, self.every_s)):
                if not self.lease.valid():
                    self._set(LockState.unconfirmed, "the store did not answer before the "
                              "lease ran out")

    def renew(self) -> None:
        if self.state is LockState.lost:
            return
        epoch = self.lease.epoch
        try:
            if self.lease.renew():
                self._set(LockState.held, "")
                return
            h = holder(self.lease.engine, self.lease.name)
        except STORE_ERRORS as exc:
            self._set(LockState.unconfirmed, one_line(exc))
            return
        self._set(LockState.lost, f"taken by {describe(h.owner)}, epoch {h.epoch}, ours was "
                  f"{epoch}" if h is not None and h.owner != self.lease.owner
                  else "its row was removed or taken again")

    def _set(self, state: LockState, why: str) -> None:
        with self._mutex:
            if state is self.state or self.state is LockState.lost:
                return
            self.state, self.why = state, why
        self.on_change(state, why)


def one_line(exc: BaseException) -> str:
    """A database error as one line: SQLAlchemy appends the statement and a help link."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def take_over_dead(lease: Lease, here: str, alive: Callable[[int], bool]) -> bool:
    """A daemon that crashed on this machine (`here`) left its lease: its process is gone, so
    the lease is taken at once, with a new epoch, instead of after it expires."""
    h = holder(lease.engine, lease.name)
    if h is None or not h.live(lease.clock()):
        return lease.acquire() is not None
    host, _, pid = h.owner.rpartition(":")
    if host != here or not pid.isdigit() or alive(int(pid)):
        return False
    if lease.take_over(h.owner) is None:
        return False
    log.warning("took over the lease of %s (epoch %d now): that process is gone",
                describe(h.owner), lease.epoch or 0)
    return True


def wait_as_standby(lease: Lease, poll_s: float, stopped: Callable[[], bool],
                    sleep: Callable[[float], None], take_dead: Callable[[], bool]) -> bool:
    """A standby: polls the lease every `poll_s` until it takes it (True) or is stopped
    (False). It takes it at the first poll after the leader's lease ran out, or at once if
    the leader's process is gone on this machine; meanwhile it says it waits (`ulm status`)."""
    said: tuple[str, int] | None = None
    failing = ""
    try:
        while not stopped():
            try:
                lease.waiting(3 * poll_s)
                if lease.acquire() is not None or take_dead():
                    log.warning("standby: took over the lead (epoch %d)%s", lease.epoch or 0,
                                f" from {describe(said[0])} (epoch {said[1]})" if said else "")
                    return True
                h = holder(lease.engine, lease.name)
                if failing:
                    log.info("standby: the store answers again")
                    failing = ""
                if h is not None and (h.owner, h.epoch) != said:
                    said = (h.owner, h.epoch)
                    log.info("standby: %s leads (epoch %d); taking over within %.0f s of its "
                             "last renewal once it stops renewing", describe(h.owner), h.epoch,
                             lease.ttl_s + poll_s)
            except STORE_ERRORS as exc:
                if not failing:
                    failing = one_line(exc)
                    log.error("standby: cannot read the lease: %s; trying again every %g s",
                              failing, poll_s)
            sleep(poll_s)
        return False
    finally:
        with contextlib.suppress(*STORE_ERRORS):  # else its row expires on its own
            lease.done_waiting()
