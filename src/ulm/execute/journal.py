"""The journal as the executor's threads use it: plans run in the background, beside the round.

A SQLite connection is never shared between threads: the thread that built the executor (the
daemon's, which also runs `recover()` and the API's synchronous applies) writes through the
store it was given; every other thread writes through one `twin()` of it (its own
connections). Calls are serialised by a lock: a few writes per action, never the hot path.
A journal without `twin()` (the in-memory one) is shared under the same lock.
"""

from __future__ import annotations

import threading
from typing import Any

from ulm.execute.types import Journal, JournalEntry, MoveRecord, Outcome
from ulm.model import Action


class SharedJournal:
    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self._owner = threading.get_ident()
        self._twin: Any = None
        self._lock = threading.RLock()

    def _pick(self) -> Any:
        if threading.get_ident() == self._owner:
            return self.inner
        if self._twin is None:
            twin = getattr(self.inner, "twin", None)
            self._twin = twin() if callable(twin) else self.inner
        return self._twin

    @property
    def writer(self) -> Any:
        """What this thread writes through (the store itself, or its twin): also for the
        writes beside the journal that a background plan makes (its plan's status)."""
        with self._lock:
            return self._pick()

    def intent(self, plan_id: str, seq: int, action: Action) -> int:
        with self._lock:
            return int(self._pick().intent(plan_id, seq, action))

    def update(self, entry: int, state: str, detail: str = "") -> None:
        with self._lock:
            self._pick().update(entry, state, detail)

    def open_entries(self) -> list[JournalEntry]:
        with self._lock:
            return list(self._pick().open_entries())

    def record_outcome(self, plan_id: str, seq: int, o: Outcome) -> None:
        with self._lock:
            self._pick().record_outcome(plan_id, seq, o)

    def move_history(self, since: float) -> list[MoveRecord]:
        with self._lock:
            return list(self._pick().move_history(since))

    def close(self) -> None:
        """Closes the twin's connections (the store given is its owner's to close)."""
        with self._lock:
            twin, self._twin = self._twin, None
        if twin is not None and twin is not self.inner and callable(getattr(twin, "close", None)):
            twin.close()
