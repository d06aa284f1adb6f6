"""`EventBus`: a small in-process pub/sub between the daemon (any thread) and the SSE stream.

The daemon calls `publish(kind, data)` from its own thread; each subscriber is an asyncio queue
on the server's event loop, fed with `call_soon_threadsafe` (asyncio queues are not
thread-safe). A slow subscriber's queue is bounded: when it is full the subscriber is told it
lost events (`overflow`) and closed, rather than letting memory grow or blocking the daemon.
The last `keep` events stay for clients that reconnect with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ulm.jsonout import dumps


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    ts: float
    kind: str
    data: dict[str, Any]

    def sse(self) -> str:
        body = dumps({"ts": self.ts, "kind": self.kind, "data": self.data}, compact=True,
                     default=str)
        return f"id: {self.id}\nevent: {self.kind}\ndata: {body}\n\n"


_CLOSE = None  # the sentinel a subscriber's queue receives when it must end


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        self.lost = False

    def offer(self, event: Event | None) -> None:  # runs on the subscriber's loop
        if self.lost:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lost = True
            self.queue.get_nowait()  # make room for the sentinel
            self.queue.put_nowait(_CLOSE)


class EventBus:
    def __init__(self, keep: int = 200, queue_size: int = 500,
                 clock: Callable[[], float] = time.time) -> None:
        self._ids = itertools.count(1)
        self._recent: collections.deque[Event] = collections.deque(maxlen=keep)
        self._subs: list[_Subscriber] = []
        self._lock = threading.Lock()
        self._queue_size = queue_size
        self._clock = clock

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> Event:
        with self._lock:
            event = Event(next(self._ids), self._clock(), kind, dict(data or {}))
            self._recent.append(event)
            subs = list(self._subs)
        for s in subs:
            try:
                s.loop.call_soon_threadsafe(s.offer, event)
            except RuntimeError:  # that loop is closed: the subscriber is gone
                self._drop(s)
        return event

    def recent(self, after: int = 0) -> list[Event]:
        with self._lock:
            return [e for e in self._recent if e.id > after]

    def close(self) -> None:
        """Ends every stream (server shutdown): open SSE responses would hold it up."""
        with self._lock:
            subs, self._subs = self._subs, []
        for s in subs:
            with contextlib.suppress(RuntimeError):  # that loop is closed already
                s.loop.call_soon_threadsafe(s.offer, _CLOSE)

    def _drop(self, sub: _Subscriber) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    async def subscribe(self, after: int = 0, heartbeat_s: float = 15.0
                        ) -> AsyncIterator[str]:
        """SSE text: missed events after `after` first, then live ones; a comment line as a
        heartbeat so that proxies and the client notice a dead connection."""
        sub = _Subscriber(asyncio.get_running_loop(), self._queue_size)
        with self._lock:
            backlog = [e for e in self._recent if e.id > after] if after else []
            self._subs.append(sub)
        try:
            yield "retry: 3000\n\n"
            for e in backlog:
                yield e.sse()
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    if sub.lost:
                        yield "event: overflow\ndata: {}\n\n"
                    return
                yield event.sse()
        finally:
            self._drop(sub)
