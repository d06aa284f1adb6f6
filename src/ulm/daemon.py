"""The daemon: every interval collect -> snapshot -> schedule -> (advise | enforce) -> record.

Modes: `observe` collects only; `advise` stores the plan for an admin to `ulm apply`; `enforce`
executes it. One daemon leads a store: a lease with a fencing epoch in the database
(`ulm.store.lease`), renewed by a heartbeat thread for as long as the process runs
(`ulm.lockkeeper`); a second one is refused, or with `--standby` waits to take over. It acts
only while that lease is confirmed and the store takes writes; otherwise it keeps collecting
(in memory, written out when the store takes writes again) and acts on nothing. SIGTERM lets
in-flight migrations finish (or hit their deadline and be aborted) and starts nothing new;
SIGHUP reloads the policy.
With `background` (`ulm run`, the default), an enforced plan runs in the executor's threads
and outlives its round; the next rounds see its unfinished actions (`ulm.execute.holds`).
`round_lock` covers a round (collect, store, plan, hand over), not the migrations after it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from ulm import handover, signals, upkeep, watching
from ulm.budget import day_start, queued
from ulm.clock import Clock
from ulm.collect.base import Collection, MetricsSource
from ulm.collect.guard import Quarantine
from ulm.conditions import Conditions
from ulm.config import Config
from ulm.daemon_kinds import Mode as Mode
from ulm.daemon_kinds import RoundResult as RoundResult
from ulm.errors import UlmError
from ulm.executor import Executor, PlanResult
from ulm.lockkeeper import (
    STORE_ERRORS,
    LockKeeper,
    LockState,
    describe,
    one_line,
    take_over_dead,
    wait_as_standby,
)
from ulm.metrics import Metrics
from ulm.model import Plan
from ulm.notify.events import Event
from ulm.notify.make import leader_changed, of_round
from ulm.planview import with_loads
from ulm.policy import Policy
from ulm.procs import alive
from ulm.redact import redact
from ulm.snapshot import Snapshot, quarantined
from ulm.store.lease import Lease
from ulm.store.lease import holder as lease_holder

log = logging.getLogger("ulm.daemon")

#: Collections kept in memory while the store takes no writes (a day of 60 s rounds).
BACKLOG = 1440


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
        self.lock_ttl_s = cfg.ha.lease_s  # renewed every quarter of it (`ulm.lockkeeper`)
        self.standby = cfg.ha.standby  # another leads: wait for its lease, not refuse
        self.on_policy: list[Callable[[Policy], None]] = []  # told of a reloaded policy
        self.conditions = Conditions(log)
        self.guard = Quarantine.of(cfg.collect.guard)  # the bogus-metrics guard
        self.exit_code = 0  # 1: the lock was lost to another daemon
        self.keeper: LockKeeper | None = None
        self.lease: Lease | None = None
        self._beat: Any = None  # the store twin the lease is renewed through
        self._locked = False  # the lease was taken (a start on a failed store takes it later)
        self._store_ok = True
        self._backlog: deque[Collection] = deque(maxlen=BACKLOG)
        self._stop = False
        self._reload = False
        self._retained_at = float("-inf")
        self._metered_at = float("-inf")
        self._meter_quiet: dict[str, float] = {}  # host -> no reading attempt before this
        #: Held around every round: what the HTTP API does (apply, book, drain) never runs
        #: beside a round (ulm.api.local.DaemonActions takes the same lock).
        self.round_lock = threading.Lock()
        #: told of what happens (`ulm.notify.wire` adds the executor's outcomes and the
        #: conditions): the API's event stream, notifications
        self.on_event: list[Callable[[Event], None]] = []
        #: Enforced plans run in the executor's threads beside the next rounds (`ulm run`);
        #: False: inside the round (a simulated clock: tests, the simulator).
        self.background = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Takes the lease (a standby first waits for it; on a store that takes no writes it
        starts degraded and takes it once the store does), reconciles the journal, primes
        the counters."""
        try:
            self._take_lock()
        except STORE_ERRORS as exc:
            self._store_failed(exc)
        self.prime()

    def _take_lock(self) -> None:
        # The heartbeat renews over its own connections (a twin of the store), never queued
        # behind the round's; they are closed at release, or at once if no lease was taken.
        twin = getattr(self.store, "twin", None)
        self._beat = twin() if twin else None
        try:
            lease = self._lead(self._beat or self.store)
        except BaseException:
            self._close_beat()
            raise
        if lease is None:  # stopped while waiting as a standby
            self._close_beat()
            return
        log.info("leading this store (epoch %d, lease %g s)", lease.epoch or 0, lease.ttl_s)
        curves = self.cfg.curves()  # the config's labels and power curves reach snapshots
        self.store.set_host_meta({h.name: (h.labels, curves.get(h.name)) for h in self.cfg.hosts})
        self._recover()  # a store failure here: degraded, and done again when it is back

    def _lead(self, beat: Any) -> Lease | None:
        """The lease taken (a standby waits for it), its heartbeat started; None: stopped."""
        lease = Lease(beat.engine, self.owner, self.lock_ttl_s)
        before = lease_holder(beat.engine)  # who led last, for the leader-change event
        # a daemon that crashed on this machine left its lease: taken at once, not at expiry
        dead = partial(take_over_dead, lease, socket.gethostname(), alive)
        if lease.acquire() is None and not dead():
            if not self.standby:
                h = lease_holder(beat.engine)
                raise UlmError("another ULM daemon holds the lock on this store"
                               f"{' (' + describe(h.owner) + ')' if h else ''}; refusing to "
                               "start a second one (`ulm run --standby` waits to take over)")
            if not wait_as_standby(lease, self.cfg.ha.poll_s, lambda: self._stop,
                                   self.clock.sleep, dead):
                return None
        self._locked = True
        self.lease = self.store.fence = lease  # every journal intent is fenced by it
        self.keeper = LockKeeper(lease, min(5.0, self.lock_ttl_s / 4), self._lock_changed)
        self.keeper.start()
        was = before.owner if before is not None and before.owner != self.owner else ""
        self.tell(leader_changed(describe(self.owner), describe(was) if was else "",
                                 f"epoch {lease.epoch or 0}", self.clock.now()))
        return lease

    def _close_beat(self) -> None:
        if self._beat is not None:
            self._beat, beat = None, self._beat
            beat.close()

    def _recover(self) -> None:  # each entry logged once; in the background, rounds go on
        (self.executor.recover_in_background if self.background else self.executor.recover)()

    def release(self) -> None:
        """Stops the heartbeat, gives the lease back (if the store lets it), closes the twin."""
        try:
            if self.keeper is not None:
                self.keeper.stop()
                if self.keeper.state is LockState.lost:
                    return
            if not self._locked or self.lease is None:
                return
            try:
                self.lease.release()
            except STORE_ERRORS as exc:
                log.error("cannot release the store lease (%s): it expires in %.0f s",
                          one_line(exc), self.lock_ttl_s)
        finally:
            self._close_beat()

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
        """SIGTERM/SIGINT stop, SIGHUP reloads the policy (`ulm.signals`)."""
        signals.install(self)

    def reload_policy(self) -> bool:
        """SIGHUP: the config's policy, read again; a broken one is refused (`ulm.signals`)."""
        return signals.reload_policy(self)

    def run(self, rounds: int | None = None) -> int:
        """Runs until stopped, or for `rounds` rounds. Returns the exit status: 1 if the
        lock was lost to another daemon."""
        self.start()
        done = 0
        try:
            while not self._stop:
                if self._reload:
                    self.reload_policy()
                started = self.clock.now()
                with self.round_lock:
                    result = self.run_round()
                self._publish(result)
                done += 1
                if rounds is not None and done >= rounds:
                    break
                self.between_rounds(started + self.cfg.collect.interval_s)
                self._sleep_until(started + self.cfg.collect.interval_s)
        finally:
            handover.finish(self)  # the plans still running in the background end first
            self.release()
        return self.exit_code

    def _publish(self, result: RoundResult) -> None:
        for event in of_round(result.plan, result.plan_id, self.mode.value, self.clock.now()):
            self.tell(event)

    def tell(self, event: Event) -> None:
        """Hands `event` to every `on_event` listener (the standby work tells a leader change
        here too); a listener's failure never stops the daemon."""
        for listener in self.on_event:
            try:
                listener(event)
            except Exception as exc:
                log.warning("event listener failed: %s: %s", type(exc).__name__, exc)

    def _sleep_until(self, t: float) -> None:
        while not self._stop and self.clock.now() < t:
            if self._reload:
                self.reload_policy()
            self.clock.sleep(min(0.5, t - self.clock.now()))

    # -- may it act? ---------------------------------------------------------------------------

    @property
    def acting(self) -> bool:
        """The lease is confirmed (and not run out by this clock) and the store takes writes:
        the only state to act in."""
        return (self._locked and self._store_ok
                and (self.keeper is None or self.keeper.held))

    def _lock_changed(self, state: LockState, why: str) -> None:
        """From the heartbeat thread: the executor stops starting actions at once."""
        if state is LockState.held:
            return  # the next round resumes (and says so) once the store takes writes too
        self.executor.stopping = True
        if state is LockState.lost:
            self._stop = True
            self.exit_code = 1
            log.error("lost the store lease (%s): acting on nothing more; stopping once the "
                      "actions in flight end", why)
            self.tell(leader_changed("another controller", describe(self.owner),
                                     f"this one lost the lease: {why}", self.clock.now()))
            return
        self._degraded(f"cannot renew the store lease: {why}")

    def _store_failed(self, exc: BaseException) -> None:
        self._store_ok = False
        self.executor.stopping = True
        self._degraded(one_line(exc))

    def _degraded(self, why: str) -> None:
        self.conditions.begin("store", redact(
            f"store {self.store_name}: {why}: monitoring in memory only, acting on nothing "
            "until it takes writes again"), logging.ERROR)

    def _store_back(self) -> None:
        """A round's writes went through: act again if the lock is confirmed too."""
        was_ok, self._store_ok = self._store_ok, True
        if not was_ok and self._locked:
            self._recover()  # a write that failed mid-plan may have left an entry open
        if self.acting:
            self.executor.stopping = self._stop
            self.conditions.end("store", f"store {self.store_name} takes writes again: "
                                "acting again")

    @property
    def store_name(self) -> str:
        engine = getattr(self.store, "engine", None)
        return redact(str(engine.url)) if engine is not None else "store"

    # -- one round -----------------------------------------------------------------------------

    def run_round(self) -> RoundResult:
        now = self.clock.now()
        collection = self.gather(now)
        try:
            return self._round(now, collection)
        except STORE_ERRORS as exc:  # disk full, read-only, database gone: degrade, go on
            self._store_failed(exc)
            return RoundResult(collection, None, None, None)

    def _round(self, now: float, collection: Collection) -> RoundResult:
        self._backlog.append(collection)
        self._flush()
        if not self._locked:
            self._take_lock()  # started on a store that took no writes
        self._store_back()
        self.meter(now)
        snap = self._snapshot(now)
        self.report(snap)
        if self.mode is Mode.observe or not self.acting:
            return RoundResult(collection, None, None, None)
        if self.advance_maintenance(snap, now):  # a host closed or reopened: look again
            snap = self._snapshot(now)
        plan = self.executor.holds.plan(snap, self.policy, now)
        if self.metrics is not None:
            self.metrics.observe_snapshot(snap)
            self.metrics.observe_plan(plan)
        self.conditions.track("problem", {p: f"plan problem: {p}" for p in plan.problems})
        if not plan.actions or not self.acting:
            if self.acting and self.mode is Mode.advise:  # the advice waiting holds no more
                self.store.withdraw_advice()
            return RoundResult(collection, plan, None, None)
        # advice the same as the one waiting keeps its plan (`ulm.advice`): the same id again
        plan_id = self.store.save_plan(with_loads(snap, plan, self.policy), self.mode.value)
        log.info("plan %s: %d action(s) (%s)", plan_id, len(plan.actions), self.mode.value)
        if self.mode is Mode.advise:
            return RoundResult(collection, plan, plan_id, None)
        if self.background:  # the round ends now; the plan's status is set when it ends
            self.executor.submit(plan, plan_id, partial(handover.applied, self))
            return RoundResult(collection, plan, plan_id, None)
        result = self.apply(plan, plan_id)
        return RoundResult(collection, plan, plan_id, result)

    def _snapshot(self, now: float) -> Snapshot:
        """The snapshot a round plans on (`planning_snapshot`), fed to the re-check too."""
        return self.executor.observe(self._prepared(now, self.policy))

    def _prepared(self, now: float, policy: Policy) -> Snapshot:
        """The store's snapshot: back-offs, guarded hosts out (queued moves count as today's)."""
        snap = self.store.snapshot(now, self.cfg.collect.window, self.cfg.collect.stale_s,
                                   day_start=day_start(policy, now))
        return self.executor.with_backoff(quarantined(
            queued(snap, self.executor.holds), self.guard.why), self.cfg.collect.stale_s)

    def planning_snapshot(self, now: float, policy: Policy | None = None) -> Snapshot:
        """The snapshot a round plans on, without feeding the re-check: what a preview (the
        API's dry run) plans on, so that it plans as a round would."""
        return self.executor.holds.mark(self._prepared(now, policy or self.policy))

    def _flush(self) -> None:
        """Writes the collections the store has not taken yet, oldest first."""
        while self._backlog:
            self.store.add_collection(self._backlog[0], managed=self.cfg.manages)
            self._backlog.popleft()

    def report(self, snap: Snapshot) -> None:
        """Hosts whose own figures went stale and VMs no reachable host lists: once each."""
        watching.report(self, snap)

    def advance_maintenance(self, snap: Snapshot, now: float) -> bool:
        """Moves every booking on by one step (`ulm.upkeep.advance_maintenance`)."""
        return upkeep.advance_maintenance(self, snap, now)

    def apply(self, plan: Plan, plan_id: str) -> PlanResult:
        """Runs a plan to its end, here (the API, `ulm apply`, maintenance); the plans of
        the background keep what they hold."""
        self.executor.refresh_check()  # re-checks read the store afresh, once
        result = self.executor.execute(plan, plan_id)
        handover.record(self, plan_id, result, self.store)
        return result

    def between_rounds(self, until: float) -> None:
        """Retention, off the round path: steps until the next round (`ulm.upkeep.retain`)."""
        if self._store_ok:
            try:
                upkeep.retain(self, until)
            except STORE_ERRORS as exc:
                self._store_failed(exc)

    def meter(self, now: float) -> None:
        upkeep.meter(self, now)

    def gather(self, now: float) -> Collection:
        """One reading of every source, merged, screened by the guard (`ulm.watching`)."""
        return watching.gather(self, now)

    def collect(self, now: float) -> Collection:
        """Gathers and stores one collection (`ulm apply`'s fresh picture)."""
        col = self.gather(now)
        self.store.add_collection(col, managed=self.cfg.manages)
        return col

