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
from ulm.notify.events import Event, Kind
from ulm.notify.make import of_action, of_bookings, of_condition

log = logging.getLogger("ulm.notify")

Sink = Callable[[Event], None]


class Publisher:
    def __init__(self, sinks: Sequence[Sink], clock: Callable[[], float]) -> None:
        self.sinks = list(sinks)
        self.clock = clock
        self.failed = 0  # sink calls that raised
        self._bookings: dict[int, tuple[str, str]] | None = None  # None: not read yet
        self._mutex = threading.Lock()

    def __call__(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:
                self.failed += 1
                log.warning("event sink failed on %s: %s: %s", event.kind.value,
                            type(exc).__name__, exc)

    def outcome(self, plan_id: str, seq: int, action: Action, outcome: Outcome | None) -> None:
        self(of_action(plan_id, seq, action, outcome, self.clock()))

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
    pub = Publisher(sinks, daemon.clock.now)

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
