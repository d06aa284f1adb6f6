"""From store rows to a `Snapshot`: windows, staleness, host state. Pure (no SQL, no clock)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ulm.model import VM, Host, HostState, PowerCurve, Resources, VmState
from ulm.snapshot import Snapshot, quarantined
from ulm.store.window import Recent


@dataclass(frozen=True, slots=True)
class HostRow:
    name: str
    cpu: float
    cores: int
    mem_mib: float
    reachable: bool
    error: str
    labels: dict[str, Any]
    power: str
    last_seen: float
    quarantine: str = ""  # the guard's verdict of the last round ("" = believed)
    cpu_model: str = ""
    cpu_features: list[str] | None = None  # JSON list of feature names


@dataclass(frozen=True, slots=True)
class VMRow:
    name: str
    host: str
    vcpus: int
    mem_mib: float
    labels: dict[str, Any]
    managed: bool
    last_seen: float
    last_moved_at: float | None
    state: str = "running"  # `VmState` value
    cpu_features: list[str] | None = None  # JSON list of feature names


@dataclass(frozen=True, slots=True)
class SampleRow:
    ts: float
    kind: str
    name: str
    host: str
    cpu: float | None
    mem_mib: float | None


def build_snapshot(now: float, hosts: Sequence[HostRow], vms: Sequence[VMRow],
                   recent: Recent, window: int, stale_s: float,
                   maintenance: Collection[str] = (),
                   powered_off: Collection[str] = (),
                   power_events: Sequence[tuple[float, str, str]] = (),
                   since: float | None = None,
                   power_curves: Sequence[PowerCurve] = (),
                   migrations_today: int = 0,
                   vm_moves: Mapping[str, tuple[int, float | None]] | None = None
                   ) -> Snapshot:
    """`recent`: what the samples from `since` on say (ulm.store.window). A VM whose newest
    sample is older than `stale_s` is `stale`: its load is the last one known, and the scheduler
    leaves it alone; one that no host has listed for `stale_s` is also `gone`. A host's own
    figures go stale the same way (`recent.host_measured`: host -> newest own figure, older
    than the window included): a silent munin-node must not leave its last figure standing as
    if it were current. `power_events` (ts, host, on|off, succeeded only) give each host's
    on-time and cycles; `power_curves` are the curves the hosts' `power` names; `vm_moves`
    (VM -> moves today, last migration's duration) what the anti-thrash gates read."""
    last_measured = recent.host_measured
    last_vm_on = recent.last_vm_on
    running = {v.host for v in vms}
    start = since or now
    on_at = {host: t for t, host, action in power_events if action == "on"}
    cycles: dict[str, int] = defaultdict(int)
    for t, host, action in power_events:
        if action == "off" and t >= now - 86400:
            cycles[host] += 1
    host_objs = [Host(h.name, Resources(h.cpu, h.mem_mib),
                      _state(h, now, stale_s, maintenance, powered_off), h.cores,
                      {str(k): str(v) for k, v in h.labels.items()}, h.power,
                      recent.host_cpu.get(h.name, ())[-window:],
                      None if h.name in running else last_vm_on.get(h.name, start),
                      on_at.get(h.name), cycles[h.name],
                      h.name in last_measured and last_measured[h.name] < now - stale_s,
                      h.cpu_model or "", frozenset(map(str, h.cpu_features or ())))
                 for h in sorted(hosts, key=lambda h: h.name)]
    known = {h.name for h in host_objs}
    vm_objs = []
    moves = vm_moves or {}
    for v in sorted(vms, key=lambda v: v.name):
        if v.host not in known:
            continue
        times, hist = recent.vm_cpu.get(v.name, ((), ()))
        times, hist = times[-window:], hist[-window:]
        gone = v.last_seen < now - stale_s
        stale = gone or not hist or times[-1] < now - stale_s
        cpu = hist[-1] if hist else 0.0
        vm_objs.append(VM(
            name=v.name, host=v.host, size=Resources(float(v.vcpus), v.mem_mib),
            load=Resources(cpu, recent.vm_mem.get(v.name, v.mem_mib)), vcpus=v.vcpus,
            labels={str(k): str(val) for k, val in v.labels.items()},
            migratable=v.managed, history=hist, stale=stale,
            last_moved_at=v.last_moved_at, gone=gone, state=_vm_state(v.state),
            moves_today=moves.get(v.name, (0, None))[0],
            last_move_s=moves.get(v.name, (0, None))[1],
            cpu_features=frozenset(map(str, v.cpu_features or ()))))
    snap = Snapshot.build(now, host_objs, vm_objs, power_curves, migrations_today)
    # the guard's verdict of the last round, as the daemon stored it: `ulm status` and the
    # re-check of `ulm apply` keep away from a quarantined host as the daemon does
    return quarantined(snap, {h.name: h.quarantine for h in hosts if h.quarantine})


def _state(h: HostRow, now: float, stale_s: float, maintenance: Collection[str],
           powered_off: Collection[str]) -> HostState:
    if h.name in maintenance:
        return HostState.MAINTENANCE
    if h.reachable and h.last_seen >= now - stale_s:
        return HostState.ON
    if h.name in powered_off:
        return HostState.OFF
    return HostState.UNKNOWN  # silent for a reason ULM does not know: never a destination


def _vm_state(value: str) -> VmState:
    """A stored state; one this version does not know (a newer writer) counts as running,
    as libvirt's own "other" states do (`ulm.drivers.base.run_state`)."""
    try:
        return VmState(value)
    except ValueError:
        return VmState.RUNNING
