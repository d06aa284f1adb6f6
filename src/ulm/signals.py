"""The daemon's signals: SIGTERM/SIGINT finish in-flight work and stop, SIGHUP reloads the
policy (a broken one is refused and the one in force stays). Kept apart from `ulm.daemon`."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

from ulm.policy import resolve_policy

if TYPE_CHECKING:
    from ulm.daemon import Daemon

log = logging.getLogger("ulm.daemon")


def install(d: Daemon) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing in-flight work, then stopping", signum)
        d.stop()

    def hangup(signum: int, frame: FrameType | None) -> None:
        d._reload = True  # the main loop reloads: no file I/O inside a handler

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, hangup)


def reload_policy(d: Daemon) -> bool:
    """SIGHUP: the config's policy, read again. A broken one is refused (its one-line error
    logged) and the policy in force stays."""
    d._reload = False
    ref = d.cfg.policy_ref()
    try:
        policy = resolve_policy(ref)
    except Exception as exc:  # a ConfigError names file, key and line; never die of it
        log.error("SIGHUP: policy refused, keeping %s (%s): %s", d.policy.name,
                  d.policy.digest, (str(exc).splitlines() or [type(exc).__name__])[0])
        return False
    old, d.policy = d.policy, policy
    for listener in d.on_policy:
        listener(policy)
    log.info("SIGHUP: policy %s (%s) reloaded from %s; was %s (%s)", policy.name,
             policy.digest, ref, old.name, old.digest)
    return True
