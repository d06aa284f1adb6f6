"""Plans that run in the background: one thread per plan, owned by the executor.

The round hands a plan to `submit` and goes on collecting, storing and planning; the plan's
actions hold what they touch (`ulm.execute.holds`) from that moment until each outcome is
closed, so the next round's plan keeps off them; the migrations of every plan together stay
within the executor's limits (`Slots`). A plan's thread ends when its last action has: a
migration still ends at its deadline or, after SIGTERM, at the shutdown grace, exactly as in
a synchronous `execute`. `join` waits for them (the daemon does, before it gives its lock
back). The journal is written before each action from whichever thread runs it
(`ulm.execute.journal`), so a crash mid-plan is what `recover()` already reconciles.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ulm.execute.base import Base, log
from ulm.execute.journal import SharedJournal
from ulm.execute.types import PlanResult
from ulm.model import Plan

#: Told of a background plan's result, from its thread: (plan_id, result).
PlanDone = Callable[[str, PlanResult], None]


class Background(Base):
    _threads: dict[str, threading.Thread]
    _threads_lock: threading.Lock

    def execute(self, plan: Plan, plan_id: str) -> PlanResult:
        raise NotImplementedError  # the Executor's

    def submit(self, plan: Plan, plan_id: str, done: PlanDone | None = None) -> None:
        """Runs the plan in its own thread and returns at once. Its actions are held from
        now on (before the thread even starts): the next snapshot already shows them."""
        self.holds.take(plan_id, plan.actions)
        thread = threading.Thread(target=self._run_plan, args=(plan, plan_id, done),
                                  name=f"ulm-plan-{plan_id}", daemon=True)
        with self._threads_lock:
            self._threads[plan_id] = thread
        thread.start()

    def _run_plan(self, plan: Plan, plan_id: str, done: PlanDone | None) -> None:
        result = PlanResult(plan_id, ())
        try:
            try:
                result = self.execute(plan, plan_id)
            except Exception:  # a bug or a driver gone mad: logged, its holds released
                log.exception("%s: the plan's execution failed", plan_id)
            finally:
                self.holds.release_plan(plan_id)
            if done is not None:
                try:
                    done(plan_id, result)
                except Exception:
                    log.exception("%s: recording the plan's result failed", plan_id)
        finally:  # only now: `join` returns once the plan's status is written too
            with self._threads_lock:
                self._threads.pop(plan_id, None)

    @property
    def writer(self) -> Any:
        """The store this thread writes through (a worker thread: the journal's twin)."""
        return self.journal.writer if isinstance(self.journal, SharedJournal) else self.journal

    def close(self) -> None:
        """The connections the plans' threads wrote through (after `join`)."""
        if isinstance(self.journal, SharedJournal):
            self.journal.close()

    @property
    def running(self) -> list[str]:
        """The plans whose threads still run."""
        with self._threads_lock:
            return sorted(self._threads)

    def join(self, timeout_s: float | None = None) -> bool:
        """Waits (in real time) for every background plan; True if none is left."""
        while True:
            with self._threads_lock:
                threads = list(self._threads.values())
            if not threads:
                return True
            for t in threads:
                t.join(timeout_s)
                if t.is_alive():
                    return False
