"""The daemon's side of plans that run in the background: their result recorded when they
end, and the wait for them when the daemon stops. Functions of the daemon `d`, kept apart to
keep `daemon.py` short (as `ulm.upkeep`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ulm.executor import PlanResult
from ulm.lockkeeper import STORE_ERRORS, one_line
from ulm.model import Plan

if TYPE_CHECKING:
    from ulm.daemon import Daemon

log = logging.getLogger("ulm.daemon")


def record(d: Daemon, plan_id: str, result: PlanResult, store: Any) -> None:
    if d.metrics is not None:
        d.metrics.observe_result(result)
    # The executor journals, records and logs each outcome the moment it is known.
    failed = any(o.status.value == "failed" for o in result.outcomes)
    store.set_plan_status(plan_id, "failed" if failed else "applied")


def applied(d: Daemon, plan_id: str, result: PlanResult) -> None:
    """A background plan ended. In its thread, so written through the journal's twin (a
    SQLite connection is never shared between threads)."""
    writer = d.executor.writer
    try:
        record(d, plan_id, result, writer if hasattr(writer, "set_plan_status") else d.store)
    except STORE_ERRORS as exc:
        log.error("%s: cannot record the plan's status: %s", plan_id, one_line(exc))


def finish(d: Daemon) -> None:
    """Waits for the plans still running in the background: each migration ends, or is
    aborted at its deadline (after SIGTERM: at the shutdown grace), as inside a round."""
    running = d.executor.running
    if running:
        log.info("waiting for %d plan(s) still running: %s", len(running), ", ".join(running))
        d.executor.join()


def hand_over(d: Daemon, plan: Plan, plan_id: str) -> Callable[[], PlanResult]:
    """Starts a plan that someone asked for (the API's apply) the way a round starts its own:
    in the background its actions are held now and it runs in the executor's thread, so the
    caller may let go of `round_lock` and rounds go on meanwhile. Returns the wait for its
    result (recorded like a round's). Without background: run here, to its end."""
    if not d.background:
        result = d.apply(plan, plan_id)
        return lambda: result
    ended = threading.Event()
    box: list[PlanResult] = []

    def done(pid: str, result: PlanResult) -> None:
        try:
            applied(d, pid, result)
        finally:
            box.append(result)
            ended.set()

    d.executor.refresh_check()  # re-checks read the store afresh, once
    d.executor.submit(plan, plan_id, done)

    def wait() -> PlanResult:
        ended.wait()  # bounded: every migration has its deadline, every power action its own
        return box[0]

    return wait
