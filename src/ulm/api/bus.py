"""`EventBus`: a small in-process pub/sub between the daemon (any thread) and the SSE stream.

The daemon calls `publish(kind, data)` from its own thread; each subscriber is an asyncio queue
on the server's event loop, fed with `call_soon_threadsafe` (asyncio queues are not
thread-safe). A slow subscriber's queue is bounded: when it is full the subscriber is told it
lost events (`overflow`) and closed, rather than letting memory grow or blocking the daemon.
The last `keep` events stay for clients that reconnect with `Last-Event-ID`.

With a `store`, every event is written to it in bulk under its stream id: a writer thread
takes what is unsaved every `flush_s` in one transaction, and `close` writes the rest, so that
they outlive the process. The ids go on from the table's highest at start, so they are the
store's row ids and stay the same across a restart: a client that reconnects with
`Last-Event-ID` is sent what it missed from the store (and what is not written yet), none
twice. History (the `events` route) reads back only the kinds no other table keeps
(`saved_kind`: not the plans, outcomes, power events and bookings). While the store takes no
writes they wait in memory (at most `max_unsaved`, the oldest dropped first and counted in
`lost`). One process writes a store's events (the leader's); should another have written
ids this one handed out (a standby that started while the store was down), the unsaved ones
are numbered on from the store's highest, and a stream sees the new ids from then on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ulm.jsonout import NonFiniteOutput, dumps
from ulm.notify.events import Kind
from ulm.redact import redact
from ulm.store.events import EventRow

log = logging.getLogger("ulm.api")
T = TypeVar("T")
#: The kinds whose events the store keeps in tables of their own (plans, outcomes, power
#: events, bookings): never written to `events` again.
KEPT_ELSEWHERE = frozenset(k.value for k in Kind if k.stored)
BACKLOG = 1000  # at most this many missed events are sent to a stream that reconnects


def saved_kind(kind: str) -> bool:
    """Whether History reads events of this kind from the store's `events` table (every
    kind is written there, for the stream; the others History takes from their own tables)."""
    return kind not in KEPT_ELSEWHERE


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
                 clock: Callable[[], float] = time.time, store: Any = None,
                 flush_s: float = 2.0, max_unsaved: int = 10_000) -> None:
        self._last = self._highest(store)  # the newest id handed out (or in the store)
        self._ids = itertools.count(self._last + 1)
        self._recent: collections.deque[Event] = collections.deque(maxlen=keep)
        self._subs: list[_Subscriber] = []
        self._lock = threading.Lock()
        self._queue_size = queue_size
        self._clock = clock
        self._store = store  # `ulm.store.Store` (its `add_events`), or None: memory only
        #: saved kinds not yet in the store, oldest first (without a store: the last `keep`)
        self._unsaved: collections.deque[Event] = collections.deque(
            maxlen=max_unsaved if store is not None else keep)
        self._flushing = threading.Lock()  # one batch at a time; readers see it whole
        self._stop = threading.Event()
        self.lost = 0  # saved kinds dropped before the store took them
        self._failing = False  # the last write failed (said once)
        self._writer: threading.Thread | None = None
        if store is not None:
            self._writer = threading.Thread(target=self._write_every, args=(flush_s,),
                                            name="ulm-events", daemon=True)
            self._writer.start()

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> Event:
        with self._lock:
            event = Event(next(self._ids), self._clock(), kind, dict(data or {}))
            self._last = event.id
            self._recent.append(event)
            if self._store is not None or saved_kind(kind):  # memory only: History's kinds
                if len(self._unsaved) == self._unsaved.maxlen:
                    self.lost += 1
                self._unsaved.append(event)
            subs = list(self._subs)
        for s in subs:
            try:
                s.loop.call_soon_threadsafe(s.offer, event)
            except RuntimeError:  # that loop is closed: the subscriber is gone
                self._drop(s)
        return event

    @staticmethod
    def _highest(store: Any) -> int:
        if store is None:
            return 0
        try:
            return int(store.max_event_id())
        except Exception as exc:  # a store that does not answer now: numbered on later
            log.warning("event ids start at 1: the store's highest is not known: %s: %s",
                        type(exc).__name__, redact((str(exc).splitlines() or [""])[0]))
            return 0

    def _renumber(self) -> None:
        """Another process wrote ids this bus handed out: the unsaved ones take new ids."""
        try:
            top = int(self._store.max_event_id())
        except Exception:  # still failing: the next flush tries again
            return
        with self._lock:
            if not self._unsaved or self._unsaved[0].id > top:
                return
            self._ids = itertools.count(top + 1)
            new = {e.id: next(self._ids) for e in self._unsaved}
            self._unsaved = collections.deque(
                (dataclasses.replace(e, id=new[e.id]) for e in self._unsaved),
                maxlen=self._unsaved.maxlen)
            self._recent = collections.deque(  # the memory's copies keep to the same ids
                (dataclasses.replace(e, id=new[e.id]) if e.id in new else e
                 for e in self._recent), maxlen=self._recent.maxlen)
            self._last = max(new.values(), default=self._last)
        log.warning("event ids taken by another process: the unsaved events numbered on "
                    "from %d", top + 1)

    def recent(self, after: int = 0) -> list[Event]:
        with self._lock:
            return [e for e in self._recent if e.id > after]

    # -- the store ---------------------------------------------------------------------------

    def _write_every(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.flush()

    def flush(self) -> int:
        """Writes the unsaved events in one transaction; how many. A store that fails keeps
        them for the next try (logged), and the caller never sees the error."""
        if self._store is None:
            return 0
        with self._flushing:
            with self._lock:
                batch = list(self._unsaved)
            if not batch:
                return 0
            try:
                self._store.add_events([row_of(e) for e in batch])
            except Exception as exc:  # the daemon reports a store that fails; we wait
                self._renumber()
                if not self._failing:  # once per outage, not every few seconds
                    log.warning("%d event(s) not written yet, kept in memory: %s: %s",
                                len(batch), type(exc).__name__,
                                redact((str(exc).splitlines() or [""])[0]))
                self._failing = True
                return 0
            if self._failing:
                log.info("the events kept in memory are written now (%d)", len(batch))
            self._failing = False
            with self._lock:
                while self._unsaved and self._unsaved[0].id <= batch[-1].id:
                    self._unsaved.popleft()
        return len(batch)

    def settled(self, read: Callable[[], T]) -> tuple[T, list[Event]]:
        """`read()` of the store's events, and the saved kinds not in the store yet: never a
        batch in both, or in neither (no flush runs in between)."""
        with self._flushing:
            got = read()
            with self._lock:
                return got, list(self._unsaved)

    def close(self) -> None:
        """Ends every stream (server shutdown): open SSE responses would hold it up; the
        unsaved events are written."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(10)
        self.flush()
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
        """SSE text: missed events after `after` first (from the store, then what it has not
        taken yet; with no store, the last `keep`), then live ones; a comment line as a
        heartbeat so that proxies and the client notice a dead connection."""
        sub = _Subscriber(asyncio.get_running_loop(), self._queue_size)
        with self._lock:
            self._subs.append(sub)  # first: what is published while the backlog is read queues
        try:
            if after > self._last:  # an id this store never got (its process was killed
                after = 0           # before it wrote them): what it missed is lost; go live
            backlog = await asyncio.to_thread(self._backlog, after) if after else []
            sent = backlog[-1].id if backlog else after
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
                if event.id > sent:  # not in the backlog already
                    yield event.sse()
        finally:
            self._drop(sub)

    def _backlog(self, after: int) -> list[Event]:
        """The events after `after`, oldest first, each once: the store's rows, the unsaved,
        and the recent ones in memory (at most `BACKLOG`, the newest)."""
        found: dict[int, Event] = {}
        if self._store is not None:
            try:
                rows, unsaved = self.settled(lambda: self._store.events_after(after, BACKLOG))
            except Exception as exc:  # the store is down: what memory holds
                log.warning("a stream's missed events are not read from the store: %s: %s",
                            type(exc).__name__, redact((str(exc).splitlines() or [""])[0]))
                rows, unsaved = [], []
            found.update((r.id, _event_of(r)) for r in rows if r.id is not None)
            found.update((e.id, e) for e in unsaved if e.id > after)
        found.update((e.id, e) for e in self.recent(after))
        return [found[i] for i in sorted(found)][-BACKLOG:]


def _event_of(r: EventRow) -> Event:
    """A stored row as the stream sent it (its `body` is the event's data)."""
    return Event(int(r.id or 0), r.ts, r.kind, dict(r.body or {}))


def row_of(e: Event) -> EventRow:
    """The store's row of a bus event: a daemon event's own fields (`notify.events.Event`'s
    dict), or what the API did (its fields, rendered into one line)."""
    d = e.data
    got = d.get("data")
    inner: dict[str, Any] = got if isinstance(got, dict) else {}
    ts = d.get("ts")
    when = float(ts) if isinstance(ts, int | float) and math.isfinite(ts) else e.ts
    text = d.get("text") if isinstance(d.get("text"), str) else ""
    if not text:  # what the API did: "mode: mode enforce, was advise, by admin-1"
        text = f"{e.kind}: " + ", ".join(f"{k} {v}" for k, v in d.items())
    try:
        body = json.loads(dumps(d, compact=True, default=str))
    except NonFiniteOutput:
        body = {}
    return EventRow(ts=when, kind=e.kind, severity=_s(d.get("severity")), vm=_s(d.get("vm")),
                    host=_s(d.get("host")), src=_s(inner.get("src")), dst=_s(inner.get("dst")),
                    plan_id=_s(d.get("plan_id")), text=text, body=body, id=e.id)


def _s(x: Any) -> str:
    return x if isinstance(x, str) else ""
