"""Hosts whose wake failed: not a destination until collection has seen them healthy since.

A silent BMC during a power-on records the power-on as failed, yet Wake-on-LAN (or the BMC
before it fell silent) may still have started the host, and a live check right then may find
its libvirtd answering. That is not enough to send a VM there: ULM could not confirm the power
state it asked for, and a host that half-booted or whose BMC hangs is exactly where a VM should
not land. So a failed power-on bars the host as a destination (the executor's re-check refuses
the move with `Cause.WAKE_FAILED`, the planner sees it quarantined with the reason) until a
round's collection sees it up with fresh figures of its own, every one of them taken after the
failure; or until a later power-on of it succeeds. The state is in memory: after a restart
the first round's collection decides afresh, which is the same rule.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ulm.model import HostState
from ulm.snapshot import Snapshot, quarantined


@dataclass
class WakeBar:
    #: host -> (when the power-on failed, why): plans' threads write it, the round reads it
    _failed: dict[str, tuple[float, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def failed(self, host: str, at: float, detail: str) -> None:
        with self._lock:
            self._failed[host] = (at, detail)

    def succeeded(self, host: str) -> None:
        with self._lock:
            self._failed.pop(host, None)

    def barred(self, host: str) -> str:
        """Why `host` is no destination ("" = it may be one)."""
        with self._lock:
            hit = self._failed.get(host)
        return "" if hit is None else _why(host, *hit)

    def apply(self, snap: Snapshot, stale_s: float) -> tuple[Snapshot, list[str]]:
        """The round's snapshot with each barred host quarantined (the reason in the explain
        row), and the hosts this snapshot clears: up (`HostState.ON`: listed by libvirt
        within `stale_s` of `taken_at`), with fresh figures of their own, and `taken_at -
        stale_s` after the failure, so that whatever made them ON was seen after it."""
        with self._lock:
            cleared = []
            for host, (at, _) in list(self._failed.items()):
                i = snap.host_index.get(host)
                if i is not None and snap.host_state[i] is HostState.ON \
                        and not snap.host_stale[i] and snap.taken_at - stale_s > at:
                    del self._failed[host]
                    cleared.append(host)
            why = {h: _why(h, at, d) for h, (at, d) in self._failed.items()}
        return (quarantined(snap, why) if why else snap), cleared


def _why(host: str, at: float, detail: str) -> str:
    when = time.strftime("%H:%M:%S", time.gmtime(at))
    return (f"its wake failed at {when} UTC ({detail}): not a destination until collection "
            f"sees {host} up")
