"""Back-off after failed migrations: per VM and per (VM, destination), exponential, capped.

A move that failed (deadline, lost destination, libvirt error) would otherwise be planned again
the very next round, and fail again, round after round. The VM's back-off reaches the scheduler
through the snapshot (`Snapshot.vm_backoff_until`: the VM is kept, with an explain row); the
pair's is longer, reaches the scheduler the same way (`Snapshot.vm_dest_backoff`: the
placement filter `BACKOFF` bars that destination, with the time left) and is enforced again by
the executor's re-check, so that when the VM may move again it is not sent straight back to
the host that failed it. The state is rebuilt from the store's
outcome rows after a restart, so a crash does not reset it. A failed power-off backs its host
off the same way (`Snapshot.host_power_backoff_until`: the planner does not plan it, the
executor skips it); that one is kept in memory: after a restart the host is tried once more.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ulm.execute.types import MoveRecord
from ulm.snapshot import Snapshot


@dataclass
class _Run:
    failures: int = 0  # in a row
    until: float = float("-inf")


@dataclass
class Backoff:
    base_s: float = 120.0
    cap_s: float = 3600.0
    pair_factor: float = 4.0
    _vms: dict[str, _Run] = field(default_factory=dict)
    _pairs: dict[tuple[str, str], _Run] = field(default_factory=dict)
    #: Hosts whose power-off failed (a silent BMC): not switched off again until then, so a
    #: dead BMC is not asked every round (blocking the plan for its timeout each time).
    _power: dict[str, _Run] = field(default_factory=dict)
    #: Plans run in background threads while the round reads the state (`apply`).
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def failed(self, vm: str, dst: str, at: float) -> float:
        """Records a failed migration; returns until when the VM backs off."""
        with self._lock:
            return self._failed(vm, dst, at)

    def _failed(self, vm: str, dst: str, at: float) -> float:
        run = self._vms.setdefault(vm, _Run())
        run.failures += 1
        run.until = at + self._length(run.failures)
        pair = self._pairs.setdefault((vm, dst), _Run())
        pair.failures += 1
        pair.until = at + self._length(pair.failures) * self.pair_factor
        return run.until

    def succeeded(self, vm: str) -> None:
        with self._lock:
            self._vms.pop(vm, None)
            for key in [k for k in self._pairs if k[0] == vm]:
                del self._pairs[key]

    def power_failed(self, host: str, at: float) -> float:
        """Records a failed power-off; returns until when the host is not powered off."""
        with self._lock:
            run = self._power.setdefault(host, _Run())
            run.failures += 1
            run.until = at + self._length(run.failures)
            return run.until

    def power_succeeded(self, host: str) -> None:
        with self._lock:
            self._power.pop(host, None)

    def power_until(self, host: str, now: float) -> float | None:
        with self._lock:
            run = self._power.get(host)
        return run.until if run is not None and run.until > now else None

    def _length(self, failures: int) -> float:
        return float(min(self.base_s * 2.0 ** (failures - 1), self.cap_s))

    def vm_until(self, vm: str, now: float) -> float | None:
        with self._lock:
            run = self._vms.get(vm)
        return run.until if run is not None and run.until > now else None

    def pair_until(self, vm: str, dst: str, now: float) -> float | None:
        with self._lock:
            run = self._pairs.get((vm, dst))
        return run.until if run is not None and run.until > now else None

    def replay(self, history: Iterable[MoveRecord]) -> None:
        """Rebuilds the state from past outcomes, oldest first (after a restart)."""
        for vm, dst, status, at in history:
            if status == "done":
                self.succeeded(vm)
            elif status == "failed":
                self.failed(vm, dst, at)

    @property
    def horizon_s(self) -> float:
        """How far back outcomes still matter."""
        return self.cap_s * max(self.pair_factor, 1.0) * 2

    def apply(self, snap: Snapshot, now: float) -> Snapshot:
        """The snapshot with each VM's back-off filled in: the scheduler keeps those VMs."""
        with self._lock:
            return self._apply(snap, now)

    def _apply(self, snap: Snapshot, now: float) -> Snapshot:
        """Both back-offs: the VM's (it is kept) and each pair's (the scheduler's `BACKOFF`
        filter keeps the VM off that destination, with the time left in the explain row)."""
        changes: dict[str, object] = {}
        if any(r.until > now for r in self._vms.values()):
            until = np.full(snap.n_vms, np.nan)
            for vm, run in self._vms.items():
                i = snap.vm_index.get(vm)
                if i is not None and run.until > now:
                    until[i] = run.until
            changes["vm_backoff_until"] = until
        pairs: dict[int, dict[str, float]] = {}
        for (vm, dst), run in self._pairs.items():
            i = snap.vm_index.get(vm)
            if i is not None and run.until > now and dst in snap.host_index:
                pairs.setdefault(i, {})[dst] = run.until
        if pairs:
            changes["vm_dest_backoff"] = tuple(pairs.get(i, {}) for i in range(snap.n_vms))
        power = {snap.host_index[h]: r.until for h, r in self._power.items()
                 if r.until > now and h in snap.host_index}
        if power:
            until = np.full(snap.n_hosts, np.nan)
            for i, t in power.items():
                until[i] = t
            changes["host_power_backoff_until"] = until
        return dataclasses.replace(snap, **changes) if changes else snap  # type: ignore[arg-type]
