"""Which hosts to switch off (empty, beyond the reserve) and which to wake (headroom gone).

Moves never target a host that is not ON in the snapshot, so a woken host is used from the
next round on, once it reports ON; the executor re-checks emptiness right before a power-off.
"""

from __future__ import annotations

import math

import numpy as np

from ulm.model import HostState, PowerOff, PowerOn
from ulm.problems import UNHOUSED, Problem
from ulm.scheduler.state import State


def sleep(st: State) -> list[PowerOff]:
    """Empty ON hosts, beyond `reserve_hosts`, while the rest keeps the headroom.

    A host is switched off only once it has stayed empty for `settle_s`, has been on for
    `min_on_s`, and has power cycles left today; among those, the ones cycled least go first,
    so the same hosts do not take every cycle (rotation).
    """
    rule = st.policy.consolidation
    if st.policy.compat == "cloudsim" or not (rule.enabled and rule.power_off):
        return []
    snap = st.snap
    # Hosts this plan empties count (the power-off stage runs after the migrations); a host
    # with a migration already in flight does not: it is about to receive or lose a VM.
    inflight = snap.vm_migrating_to >= 0
    touched = np.zeros(snap.n_hosts, np.bool_)
    touched[snap.vm_migrating_to[inflight]] = True
    touched[snap.vm_host[inflight]] = True
    empty = snap.host_on & (st.host_count == 0) & ~touched
    if any(snap.host_quarantine):  # its figures are disbelieved: "empty" may be one of them
        empty &= ~np.array([bool(q) for q in snap.host_quarantine], np.bool_)
    if not empty.any():
        return []
    # Keep the biggest empty hosts as the reserve: they absorb the most of a sudden rise.
    # (The per-host figures as Python numbers: the same values, compared the same way, and a
    # simulated day asks this of ~250 empty hosts a round, where numpy's per-element access
    # cost more than the rest of the rule.)
    cpu, cycles = snap.host_cpu.tolist(), snap.host_cycles.tolist()
    order = sorted(np.flatnonzero(empty).tolist(), key=lambda h: (-cpu[h], h))
    keep = order[: rule.reserve_hosts]
    on_cap = float(snap.host_cpu[snap.host_on].sum())
    need = float(st.host_cur.sum()) / max(1.0 - rule.headroom, 1e-9)
    out: list[PowerOff] = []
    may = _May(st)
    # Rotation: the hosts cycled least today go first, then the smallest (cheapest to lose).
    for h in sorted(order[rule.reserve_hosts:], key=lambda h: (cycles[h], cpu[h], -h)):
        if not may(h) or on_cap - cpu[h] < need:
            keep.append(h)
            continue
        on_cap -= cpu[h]
        out.append(PowerOff(snap.host_names[h], "empty after consolidation; "
                            f"{len(keep)} empty host(s) kept on as reserve"))
    return sorted(out, key=lambda a: a.host)


class _May:
    """Whether empty host `h` may be switched off now: not backing off a failed power-off,
    empty for `settle_s`, on for `min_on_s`, power cycles left today."""

    def __init__(self, st: State) -> None:
        snap = st.snap
        self.rule, self.now = st.policy.consolidation, st.now
        self.backoff = snap.host_power_backoff_until.tolist()
        self.empty_since = snap.host_empty_since.tolist()
        self.on_since = snap.host_on_since.tolist()
        self.cycles = snap.host_cycles.tolist()

    def __call__(self, h: int) -> bool:
        rule, now = self.rule, self.now
        if self.backoff[h] > now:  # its last power-off failed (NaN: False)
            return False
        if rule.settle_s > 0:
            since = self.empty_since[h]  # NaN: it ran VMs in the snapshot (emptied now)
            if math.isnan(since) or now - since < rule.settle_s:
                return False
        on_since = self.on_since[h]
        if rule.min_on_s > 0 and not math.isnan(on_since) and now - on_since < rule.min_on_s:
            return False
        limit = rule.max_cycles_per_day
        return limit is None or int(self.cycles[h]) < limit


def wake(st: State, problems: list[Problem]) -> list[PowerOn]:
    """Wakes OFF hosts when the load does not fit the headroom, or VMs found no host."""
    if st.policy.compat == "cloudsim":
        return []
    snap = st.snap
    # (`in` on the tuple finds every element that `is` OFF, and maybe equal strings: the
    # usual "no host is off" is answered without building the mask, ~0.3 ms a round)
    if HostState.OFF not in snap.host_state:
        return []
    off = np.array([s is HostState.OFF for s in snap.host_state], np.bool_)
    if not off.any():
        return []
    waking = np.array([s is HostState.WAKING for s in snap.host_state], np.bool_)
    headroom = st.policy.consolidation.headroom if st.policy.consolidation.enabled else 0.0
    cap = float(snap.host_cpu[snap.host_on | waking].sum())
    need = float(st.host_cur.sum()) / max(1.0 - headroom, 1e-9)
    unplaced = any(p.kind in UNHOUSED for p in problems)
    if cap >= need and not (unplaced and not waking.any()):
        return []
    out: list[PowerOn] = []
    for h in sorted(np.flatnonzero(off).tolist(),
                    key=lambda h: (-snap.host_cpu[h], snap.host_cycles[h], h)):
        out.append(PowerOn(snap.host_names[h], f"headroom: load {need:.1f} needs more than "
                           f"{cap:.1f} cpu units on" if cap < need else
                           "overloaded VMs found no host"))
        cap += float(snap.host_cpu[h])
        if cap >= need:
            break
    return out


def wake_for_office(st: State) -> list[PowerOn]:
    """Ahead of office hours every sleeping host is woken, so the day starts with all of them.

    The executor staggers them (one stage, bounded like migrations); a host that does not come
    back is reported and the next round wakes another if headroom is short.
    """
    snap = st.snap
    return [PowerOn(snap.host_names[h], "office hours start soon: waking ahead of the load")
            for h in range(snap.n_hosts) if snap.host_state[h] is HostState.OFF]
