"""A hard upper bound on a blocking library call whose own timeouts cannot be configured
(pyghmi retries a silent BMC for about 4 s per attempt, whatever the caller wants)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Deadline(Exception):
    """The call did not return within the allowed time (it may still finish later)."""


def within(seconds: float, call: Callable[[], T]) -> T:
    """Runs `call` in a daemon thread and waits at most `seconds` for it.

    A daemon thread, because a call that never returns must not keep the process alive; the
    library gives up on its own a few seconds later, so such threads do not pile up.
    """
    box: dict[str, T] = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name="ulm-power-call", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise Deadline(f"no answer within {seconds:g} s")
    if failure:
        raise failure[0]
    return box["value"]
