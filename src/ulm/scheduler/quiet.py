"""Python's cycle collector paused while a plan is made.

A plan of a big cluster creates its explain rows and problems by the ten thousand (20,000
hosts, 200,000 VMs: 37,000 rows, 33,000 problems), and every few hundred new objects the
collector walks the young ones, every so often all of them: at that size ~0.5 s of ~3.9 s
(docs/benchmarks.md), for nothing, since a plan holds no cycles to free. The collector is paused for
the call and resumed after it (what it would have found is found at its next run); nesting
and threads (the API's preview beside a round) count, so the last one out resumes it, and
never one that someone else paused.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_inside = 0
_resume = False  # whether the collector ran when the first one came in


@contextmanager
def collector_paused() -> Iterator[None]:
    global _inside, _resume
    with _lock:
        if _inside == 0:
            _resume = gc.isenabled()
            gc.disable()
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _resume:
                gc.enable()
