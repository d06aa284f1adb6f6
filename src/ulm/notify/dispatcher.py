"""The bounded queue between the daemon and the targets, and the thread that empties it."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ulm.notify.events import Event
from ulm.notify.targets import DeliveryError, Target

log = logging.getLogger(__name__)


@dataclass
class Counts:
    delivered: int = 0
    failed: int = 0  # given up after the retries, or refused for good
    dropped: int = 0  # the queue was full: the oldest event went


class Dispatcher:
    def __init__(self, targets: Sequence[Target], queue: int = 1000, backoff_s: float = 1.0,
                 max_backoff_s: float = 60.0,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.targets = list(targets)
        self.counts = Counts()
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._q: collections.deque[tuple[Target, Event]] = collections.deque(maxlen=queue)
        self._cv = threading.Condition()
        self._stop = False
        self._busy = 0
        self._sleep = sleep or self._wait
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def publish(self, event: Event) -> None:
        """Never blocks, never raises: the event is queued for every target that wants it."""
        with self._cv:
            for t in self.targets:
                if t.wants(event):
                    if len(self._q) == self._q.maxlen:
                        self.counts.dropped += 1
                    self._q.append((t, event))
            self._cv.notify()

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Waits until every queued event was delivered or given up (shutdown, tests)."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self._q or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        self.drain(timeout_s)
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout_s)
        for t in self.targets:
            close = getattr(t, "close", None)
            if close is not None:
                close()

    def _wait(self, seconds: float) -> None:
        with self._cv:
            self._cv.wait_for(lambda: self._stop, seconds)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._q or self._stop)
                if self._stop and not self._q:
                    return
                target, event = self._q.popleft()
                self._busy += 1
            try:
                self._deliver(target, event)
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    def _deliver(self, target: Target, event: Event) -> None:
        delay = self.backoff_s
        for attempt in range(target.retries + 1):
            try:
                target.send(event)
                self.counts.delivered += 1
                return
            except DeliveryError as exc:
                last = exc
                if not exc.retry or self._stop:
                    break
                if attempt < target.retries:
                    self._sleep(delay)
                    delay = min(delay * 2, self.max_backoff_s)
        self.counts.failed += 1
        log.warning("notification %s not delivered to %s: %s", event.kind, target.name, last)
