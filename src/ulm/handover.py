"""The daemon's side of plans that run in the background: their result recorded when they
end, and the wait for them when the daemon stops. Functions of the daemon `d`, kept apart to
keep `daemon.py` short (as `ulm.upkeep`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ulm.executor import PlanResult
from ulm.lockkeeper import STORE_ERRORS, one_line

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
