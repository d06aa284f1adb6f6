"""The daemon: every interval collect -> snapshot -> schedule -> (advise | enforce) -> record.

Modes: `observe` collects only; `advise` stores the plan for an admin to `ulm apply`; `enforce`
executes it. One daemon per store (a lock in the database); SIGTERM lets in-flight migrations
finish (or hit their deadline and be aborted) and starts nothing new.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import socket
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ulm.clock import Clock
from ulm.collect.base import Collection, MetricsSource
from ulm.config import Config
from ulm.errors import UlmError
from ulm.executor import Executor, PlanResult
from ulm.model import Plan
from ulm.policy import Policy
from ulm.scheduler import schedule

log = logging.getLogger("ulm.daemon")


class Mode(enum.StrEnum):
    observe = "observe"
    advise = "advise"
    enforce = "enforce"


@dataclass(frozen=True, slots=True)
class RoundResult:
    collection: Collection
    plan: Plan | None
    plan_id: str | None
    result: PlanResult | None


class Daemon:
    def __init__(self, cfg: Config, policy: Policy, store: Any, sources: list[MetricsSource],
                 executor: Executor, clock: Clock, mode: Mode) -> None:
        self.cfg = cfg
        self.policy = policy
        self.store = store
        self.sources = sources
        self.executor = executor
        self.clock = clock
        self.mode = mode
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        ttl = max(3 * self.cfg.collect.interval_s, 30.0)
        if not self.store.acquire_lock(self.owner, ttl):
            raise UlmError("another ULM daemon holds the lock on this store; "
                           "refusing to start a second one")
        for outcome in self.executor.recover():
            log.warning("recovered journal entry: %s %s: %s", outcome.action,
                        outcome.status.value, outcome.detail)

    def stop(self, *_: object) -> None:
        """SIGTERM/SIGINT: finish the round, start no new action."""
        self._stop = True
        self.executor.stopping = True

    def install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: finishing in-flight work, then stopping", signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, once: bool = False) -> None:
        self.start()
        try:
            while not self._stop:
                started = self.clock.now()
                self.run_round()
                if once:
                    break
                self.store.refresh_lock(self.owner, max(3 * self.cfg.collect.interval_s, 30.0))
                self._sleep_until(started + self.cfg.collect.interval_s)
        finally:
            self.store.release_lock(self.owner)

    def _sleep_until(self, t: float) -> None:
        while not self._stop and self.clock.now() < t:
            self.clock.sleep(min(0.5, t - self.clock.now()))

    # -- one round -----------------------------------------------------------------------------

    def run_round(self) -> RoundResult:
        now = self.clock.now()
        collection = self.collect(now)
        if self.mode is Mode.observe:
            return RoundResult(collection, None, None, None)
        snap = self.store.snapshot(now, self.cfg.collect.window, self.cfg.collect.stale_s)
        plan = schedule(snap, self.policy, now)
        for problem in plan.problems:
            log.warning("plan problem: %s", problem)
        if not plan.actions:
            return RoundResult(collection, plan, None, None)
        plan_id = self.store.save_plan(plan, self.mode.value)
        log.info("plan %s: %d action(s) (%s)", plan_id, len(plan.actions), self.mode.value)
        if self.mode is Mode.advise:
            return RoundResult(collection, plan, plan_id, None)
        result = self.apply(plan, plan_id)
        return RoundResult(collection, plan, plan_id, result)

    def apply(self, plan: Plan, plan_id: str) -> PlanResult:
        result = self.executor.execute(plan, plan_id)
        for seq, outcome in enumerate(result.outcomes, 1):
            self.store.record_outcome(plan_id, seq, outcome)
            log.info("%s: %s %s", plan_id, outcome.status.value, outcome.detail or outcome.action)
        failed = any(o.status.value == "failed" for o in result.outcomes)
        self.store.set_plan_status(plan_id, "failed" if failed else "applied")
        return result

    def collect(self, now: float) -> Collection:
        merged: Collection | None = None
        for source in self.sources:
            col = source.collect(now)
            for silent in col.silent:
                log.warning("%s: %s says nothing: %s", source.name, silent.host, silent.error)
            self.store.add_collection(col)
            merged = col if merged is None else Collection(now, merged.hosts + col.hosts,
                                                           merged.vms + col.vms)
        return merged if merged is not None else Collection(now, ())
