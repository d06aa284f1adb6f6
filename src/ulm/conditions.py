"""Failed and degraded states, each logged once when it begins and once when it ends.

A daemon that logs "hA says nothing" every round buries the one line that matters; one that
logs a failure at INFO hides it. A condition is keyed (`silent:munin:hA`, `store`, ...): it
is logged at WARNING or ERROR when it begins, at INFO when it ends, and not in between.
The same two moments go to `listeners` (the daemon's event stream and notifications): a
listener that fails is logged, never stops the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

#: Told of a condition that begins or ends: (key, message, began, level).
Listener = Callable[[str, str, bool, int], None]


class Conditions:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.active: dict[str, str] = {}
        self._mutex = threading.Lock()  # the lock heartbeat reports from its own thread
        self.listeners: list[Listener] = []

    def begin(self, key: str, message: str, level: int = logging.WARNING) -> bool:
        """Logs `message` if `key` was not active; True if it was logged."""
        with self._mutex:
            if key in self.active:
                return False
            self.active[key] = message
        self.log.log(level, "%s", message)
        self._tell(key, message, True, level)
        return True

    def end(self, key: str, message: str = "") -> bool:
        """Ends `key` (logging `message` at INFO if given); True if it was active."""
        with self._mutex:
            if self.active.pop(key, None) is None:
                return False
        if message:
            self.log.info("%s", message)
        self._tell(key, message, False, logging.INFO)
        return True

    def _tell(self, key: str, message: str, began: bool, level: int) -> None:
        for listener in list(self.listeners):
            try:
                listener(key, message, began, level)
            except Exception as exc:  # telling people must never stop what is being told
                self.log.warning("condition listener failed: %s: %s", type(exc).__name__, exc)

    def track(self, prefix: str, current: Mapping[str, str],
              ended: Callable[[str], str] = lambda name: "",
              level: int = logging.WARNING) -> list[str]:
        """Makes the conditions under `prefix` exactly `current` (name -> message): new ones
        begin, vanished ones end (logging `ended(name)` unless empty). Returns the new."""
        new = [name for name, msg in current.items() if self.begin(f"{prefix}:{name}", msg, level)]
        with self._mutex:
            gone = [k for k in self.active if k.startswith(prefix + ":")
                    and k[len(prefix) + 1:] not in current]
        for key in gone:
            self.end(key, ended(key[len(prefix) + 1:]))
        return new

    def __contains__(self, key: str) -> bool:
        return key in self.active
