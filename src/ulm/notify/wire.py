"""`attach(daemon, sinks)`: the daemon's events — its rounds and plans, the executor's action
outcomes, the conditions that begin and end, the maintenance bookings' steps — to every sink
(the API's event bus, the notification dispatcher).

Each hook point is a listener list (`Daemon.on_event`, `Executor.on_outcome`,
`Conditions.listeners`); a sink that fails is logged and skipped, and never reaches the daemon.
Bookings change in the store (the API books them, `ulm.upkeep` steps them), so their steps are
found by comparing the store's bookings after each round with the ones seen the round before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ulm.execute.types import Outcome
from ulm.model import Action
from ulm.notify.events import Event, Kind, Severity
from ulm.notify.make import of_action, of_bookings, of_condition

log = logging.getLogger("ulm.notify")

Sink = Callable[[Event], None]
_KEEP = 1000  # plan ids remembered as announced


class Publisher:
    def __init__(self, sinks: Sequence[Sink], clock: Callable[[], float],
                 store: Any = None) -> None:
        self.sinks = list(sinks)
        self.clock = clock
        self.store = store  # where the plans are: announced before their first action
        self._announced: dict[str, None] = {}  # plan ids, oldest first
        self.since = clock()  # plans made before are not announced again
        self.failed = 0  # sink calls that raised
        self._bookings: dict[int, tuple[str, str]] | None = None  # None: not read yet
        self._mutex = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.kind is Kind.plan_made and not self._first(event.plan_id):
            return  # announced already, before its first action
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:
                self.failed += 1
                log.warning("event sink failed on %s: %s: %s", event.kind.value,
                            type(exc).__name__, exc)

    def _first(self, plan_id: str) -> bool:
        """True once per plan id (the last `_KEEP` are remembered)."""
        with self._mutex:
            if plan_id in self._announced:
                return False
            self._announced[plan_id] = None
            while len(self._announced) > _KEEP:
                del self._announced[next(iter(self._announced))]
            return True

    def outcome(self, plan_id: str, seq: int, action: Action, outcome: Outcome | None) -> None:
        """An action's start or end. In enforce mode the round executes its plan before the
        daemon tells of the round, so the plan is announced here, before its first action."""
        if self.store is not None and plan_id not in self._announced:
            self._announce(plan_id)
        self(of_action(plan_id, seq, action, outcome, self.clock()))

    def _announce(self, plan_id: str) -> None:
        try:
            record = self.store.plan(plan_id)
        except Exception as exc:  # a store that fails is the daemon's condition, not ours
            log.debug("plan %s not read for events: %s", plan_id, exc)
            return
        if record.created_at < self.since:
            return  # made before this daemon started (an advised plan applied later)
        body = record.plan
        self(Event(Kind.plan_made, Severity.info, plan_id=plan_id, ts=self.clock(),
                   data={"mode": record.mode, "actions": len(body["actions"]),
                         "problems": list(body["problems"])}))

    def condition(self, key: str, message: str, began: bool, level: int) -> None:
        self(of_condition(key, message, began, level, self.clock()))

    def bookings(self, store: Any) -> None:
        """Steps since the last look. The first look only learns what is there: a restart
        must not announce every booking again."""
        try:
            now = list(store.bookings())
        except Exception as exc:  # a store that fails is the daemon's condition, not ours
            log.debug("bookings not read for events: %s", exc)
            return
        with self._mutex:
            before, self._bookings = self._bookings, {b.id: (b.status, b.detail) for b in now}
        if before is not None:
            for event in of_bookings(before, now, self.clock()):
                self(event)


def attach(daemon: Any, sinks: Sequence[Sink]) -> Publisher:
    """Hooks a `Publisher` for `sinks` into the daemon, its executor and its conditions."""
    pub = Publisher(sinks, daemon.clock.now, daemon.store)

    def on_event(event: Event) -> None:
        pub(event)
        if event.kind is Kind.round:
            pub.bookings(daemon.store)

    daemon.on_event.append(on_event)
    daemon.executor.on_outcome.append(pub.outcome)
    daemon.conditions.listeners.append(pub.condition)
    return pub


def to_bus(bus: Any) -> Sink:
    """A sink for `ulm.api.bus.EventBus`: the SSE event's name is the kind."""
    return lambda e: bus.publish(e.kind.value, e.to_dict())
