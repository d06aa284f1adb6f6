"""Telling people: events (a failed migration, a drain that cannot fit, a host that did not
wake, a leader change, a degraded daemon) to webhooks and e-mail, filtered by kind and severity.

`Event` is data; each target renders it at its edge (JSON for a webhook, text for a mail).
`ulm.notify.wire.attach` hooks the daemon, its executor and its conditions to the sinks.
Delivery never blocks the daemon: `Dispatcher.publish` puts the event on a bounded queue and
a worker thread delivers it, retrying with back-off; when the queue is full the oldest event
is dropped and counted, never the daemon's round.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ulm.notify.dispatcher import Dispatcher
    from ulm.notify.events import Event, Kind, Severity
    from ulm.notify.settings import NotifyConfig

__all__ = ["Dispatcher", "Event", "Kind", "NotifyConfig", "Severity", "build"]

# Loaded on first use: the config imports `ulm.notify.settings` and the daemon
# `ulm.notify.events` for every command, and httpx (the webhooks') costs half a second.
_HOME = {"Dispatcher": "dispatcher", "Event": "events", "Kind": "events",
         "Severity": "events", "NotifyConfig": "settings"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'ulm.notify' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ulm.notify.{_HOME[name]}"), name)


def build(cfg: NotifyConfig) -> Dispatcher:
    """The dispatcher for `[notify]` (secrets read now, so a missing file fails at start)."""
    from ulm.notify.dispatcher import Dispatcher
    from ulm.notify.targets import Email, Target, Webhook

    targets: list[Target] = [Webhook(w) for w in cfg.webhooks]
    targets += [Email(e) for e in cfg.email]
    return Dispatcher(targets, queue=cfg.queue)
