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
from ulm.maintenance import BookingView, Step, return_home, step
from ulm.metrics import Metrics
from ulm.model import Plan
from ulm.policy import Policy
from ulm.procs import alive
from ulm.scheduler import schedule
from ulm.snapshot import Snapshot

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
        self.metrics: Metrics | None = None
        self._stop = False
        self._retained_at = float("-inf")
        self._metered_at = float("-inf")
        self._meter_quiet: dict[str, float] = {}  # host -> no reading attempt before this

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        ttl = max(3 * self.cfg.collect.interval_s, 30.0)
        if not self.store.acquire_lock(self.owner, ttl) and not self._take_over_dead(ttl):
            holder = self.store.lock_holder()
            raise UlmError("another ULM daemon holds the lock on this store"
                           f"{' (' + holder[0] + ')' if holder else ''}; "
                           "refusing to start a second one")
        curves = self.cfg.curves()  # the config's labels and power curves reach snapshots
        self.store.set_host_meta({h.name: (h.labels, curves.get(h.name)) for h in self.cfg.hosts})
        self.executor.recover()  # logs and records each recovered entry itself, once
        self.prime()

    def _take_over_dead(self, ttl: float) -> bool:
        """A daemon that crashed on this machine left its lock: its process is gone, so the
        lock can be taken at once instead of waiting for it to expire."""
        holder = self.store.lock_holder()
        if holder is None:
            return bool(self.store.acquire_lock(self.owner, ttl))
        host, _, pid = holder[0].rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or alive(int(pid)):
            return False
        log.warning("taking over the lock of %s: that process is gone", holder[0])
        return bool(self.store.take_over_lock(self.owner, holder[0], ttl))

    def prime(self, seconds: float = 2.0) -> None:
        """CPU figures are counter deltas: read every counter once so that the first round
        already has figures (and discard that reading)."""
        for source in self.sources:
            source.collect(self.clock.now())
        self.clock.sleep(seconds)

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

    def run(self, rounds: int | None = None) -> None:
        """Runs until stopped, or for `rounds` rounds."""
        self.start()
        done = 0
        try:
            while not self._stop:
                started = self.clock.now()
                self.run_round()
                done += 1
                if rounds is not None and done >= rounds:
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
        self.meter(now)
        self.retain(now)
        if self.mode is Mode.observe:
            return RoundResult(collection, None, None, None)
        snap = self.executor.with_backoff(
            self.store.snapshot(now, self.cfg.collect.window, self.cfg.collect.stale_s))
        if self.advance_maintenance(snap, now):  # a host closed or reopened: look again
            snap = self.executor.with_backoff(
                self.store.snapshot(now, self.cfg.collect.window, self.cfg.collect.stale_s))
        plan = schedule(snap, self.policy, now)
        if self.metrics is not None:
            self.metrics.observe_snapshot(snap)
            self.metrics.observe_plan(plan)
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

    def advance_maintenance(self, snap: Snapshot, now: float) -> bool:
        """Moves every booking on by one step; runs its power actions in enforce mode."""
        changed = False
        speed = self.store.migration_speed()
        for b in self.store.bookings(active_only=True):
            view = BookingView(b.id, b.host, b.start, b.end, b.power_off, b.status)
            nxt = step(view, snap, self.policy, now, speed)
            if nxt.actions and self.mode is Mode.enforce:
                plan = Plan(snap.id, self.policy.digest, now, nxt.actions)
                plan_id = self.store.save_plan(plan, "maintenance")
                result = self.apply(plan, plan_id)
                if any(o.status.value != "done" for o in result.outcomes):
                    detail = "; ".join(o.detail for o in result.outcomes)
                    log.warning("maintenance #%d on %s: %s", b.id, b.host, detail)
                    self.store.set_booking(b.id, b.status, f"power action failed: {detail}")
                    continue
            elif nxt.actions:
                log.info("maintenance #%d on %s would %s (mode %s)", b.id, b.host,
                         nxt.actions[0].kind, self.mode.value)
                continue
            if nxt.status == "draining" and b.status != "draining":
                i = snap.host_index[b.host]
                self.store.set_home_vms(b.id, [snap.vm_names[k] for k in range(snap.n_vms)
                                               if snap.vm_host[k] == i])
            if nxt.status == "done" and b.return_home and b.home_vms:
                nxt = self._return_home(b, snap, now, nxt)
            if (nxt.status, nxt.detail) != (b.status, b.detail):
                if nxt.status == "blocked" or "still on" in nxt.detail:
                    log.warning("maintenance #%d on %s: %s", b.id, b.host, nxt.detail)
                else:
                    log.info("maintenance #%d on %s: %s", b.id, b.host, nxt.detail)
                self.store.set_booking(b.id, nxt.status, nxt.detail)
                changed = changed or nxt.status != b.status
        return changed

    def _return_home(self, b: Any, snap: Snapshot, now: float, nxt: Step) -> Step:
        moves, problems = return_home(snap, self.policy, b.host, b.home_vms, now)
        for p in problems:
            log.warning("maintenance #%d on %s: %s", b.id, b.host, p)
        if moves and self.mode is Mode.enforce:
            plan = Plan(snap.id, self.policy.digest, now, tuple(moves))
            result = self.apply(plan, self.store.save_plan(plan, "maintenance"))
            done = sum(1 for o in result.outcomes if o.status.value == "done")
            return Step(nxt.status, f"{nxt.detail}; {done} of {len(b.home_vms)} VM(s) "
                        f"returned home{'; ' + '; '.join(problems) if problems else ''}")
        return nxt

    def apply(self, plan: Plan, plan_id: str) -> PlanResult:
        result = self.executor.execute(plan, plan_id)
        if self.metrics is not None:
            self.metrics.observe_result(result)
        # The executor journals, records and logs each outcome the moment it is known.
        failed = any(o.status.value == "failed" for o in result.outcomes)
        self.store.set_plan_status(plan_id, "failed" if failed else "applied")
        return result

    def retain(self, now: float) -> None:
        """Downsamples and expires old samples, once per bucket (not every round)."""
        c = self.cfg.collect
        if now - self._retained_at < c.bucket_s:
            return
        raw, gone = self.store.retention(now, c.raw_keep_s, c.bucket_s, c.keep_s)
        self._retained_at = now
        if raw or gone:
            log.info("retention: %d raw samples downsampled, %d expired", raw, gone)

    def meter(self, now: float) -> None:
        """Reads the power meter of every BMC that has one, every `power_interval_s`.

        A BMC that fails is left alone for ten intervals (a dead BMC must not slow every
        round); one without a meter is not asked again until the daemon restarts.
        """
        every = self.cfg.collect.power_interval_s
        if every <= 0 or now - self._metered_at < every:
            return
        self._metered_at = now
        readings: dict[str, float] = {}
        for host, driver in getattr(self.executor, "power", {}).items():
            read = getattr(driver, "reading_w", None)
            if read is None or self._meter_quiet.get(host, float("-inf")) > now:
                continue
            try:
                watts = read()
            except Exception as exc:  # a PowerError names the host and BMC, never a secret
                log.warning("power reading of %s failed: %s", host, exc)
                self._meter_quiet[host] = now + 10 * every
                continue
            if watts is None:
                self._meter_quiet[host] = float("inf")
                log.info("%s: the BMC has no power meter; energy uses the power model", host)
                continue
            readings[host] = watts
        self.store.add_power_readings(now, readings)

    def collect(self, now: float) -> Collection:
        merged: Collection | None = None
        for source in self.sources:
            col = source.collect(now)
            for silent in col.silent:
                log.warning("%s: %s says nothing: %s", source.name, silent.host, silent.error)
            self.store.add_collection(col, managed=self.cfg.manages)
            merged = col if merged is None else Collection(now, merged.hosts + col.hosts,
                                                           merged.vms + col.vms)
        return merged if merged is not None else Collection(now, ())

