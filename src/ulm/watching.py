"""What the daemon watches each round, and says once: silent sources, quarantined, stale and
gone hosts and VMs (each a condition that begins and ends, `ulm.conditions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ulm.collect.base import Collection
from ulm.model import HostState, VmState
from ulm.snapshot import Snapshot

if TYPE_CHECKING:
    from ulm.daemon import Daemon


def gather(d: Daemon, now: float) -> Collection:
    """One reading of every source, merged; hosts that say nothing are logged when they
    fall silent and when they answer again, not every round."""
    hosts: list[Any] = []
    vms: list[Any] = []
    silent: dict[str, str] = {}
    for source in d.sources:
        col = source.collect(now)
        hosts.extend(col.hosts)
        vms.extend(col.vms)
        for h in col.silent:
            silent[f"{source.name}: {h.host}"] = f"{source.name}: {h.host} says nothing: " \
                                                 f"{h.error}"
    d.conditions.track("silent", silent, lambda k: f"{k} answers again")
    col = d.guard.screen(Collection(now, tuple(hosts), tuple(vms)))
    d.conditions.track("quarantine", d.guard.messages(),
                       lambda h: f"{h}: its figures are believable again")
    return col


def report(d: Daemon, snap: Snapshot) -> None:
    """Hosts whose own figures went stale and VMs no reachable host lists: once each."""
    stale_s = d.cfg.collect.stale_s
    stale = {h.name: _stale_host(h.name, h.cpu_history, stale_s)
             for h in snap.hosts if h.stale and h.state is HostState.ON
             and h.name not in d.guard.bogus}  # a quarantine is reported as one
    d.conditions.track("stale-host", stale, lambda h: f"{h}: its own figures are fresh")
    gone = {}
    for i in np.flatnonzero(snap.vm_gone).tolist():
        vm = snap.vm(i)
        state = snap.host_state[snap.host_index[vm.host]]
        gone[vm.name] = (f"VM {vm.name} is gone: no reachable host has listed it for "
                         f"{stale_s:g} s (last on {vm.host}, which is {state.value})")
    d.conditions.track("gone", gone, lambda v: f"VM {v} is listed again on "
                       f"{snap.vm(snap.vm_index[v]).host}" if v in snap.vm_index else "")
    d.conditions.track("vm-state", not_running(snap), lambda v: f"VM {v} runs again")


def not_running(snap: Snapshot) -> dict[str, str]:
    """VM -> what to say once: it is paused or crashed, and ULM leaves it where it is. A VM
    gone or in a migration is left out: the copy on a migration's destination is paused
    until it ends, and a gone VM is reported as gone."""
    if snap.vm_state.count(VmState.RUNNING) == snap.n_vms:
        return {}
    out = {}
    for i, state in enumerate(snap.vm_state):
        if state is VmState.RUNNING or snap.vm_gone[i] or snap.vm_migrating_to[i] >= 0:
            continue
        host = snap.host_names[int(snap.vm_host[i])] if snap.vm_host[i] >= 0 else "?"
        out[snap.vm_names[i]] = (f"VM {snap.vm_names[i]} is {state.value} on {host}: ULM "
                                 "neither moves nor resumes it")
    return out


def _stale_host(name: str, history: tuple[float, ...], stale_s: float) -> str:
    last = f" (the last one: {history[-1]:.0%})" if history else ""
    return f"{name}: its own figures are older than {stale_s:g} s{last}: nothing decided for it"
