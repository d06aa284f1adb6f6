"""Why a VM may not move this round: pins, back-offs, the cool-down and the other anti-thrash
gates, and VM priorities (`ulm.priority`). Pure; read once per round by `State.of`.

Two masks, because a drain for maintenance must still empty its host: `mask` holds every
reason (relief, balance, consolidation respect them all), `drain_mask` only the hard ones
(not placed, stale, in flight, pinned, backing off after a failed migration). The cool-down,
the per-VM daily limit and `pin_critical` hold back everything but such a drain, as the day's
migration budget does (`packing.evacuate`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.budget import day_start
from ulm.model import VmState
from ulm.policy import Policy
from ulm.snapshot import Snapshot

PINNED_LABEL = "ulm.pinned"
PRIORITY_LABEL = "ulm.priority"
#: The label's words, lowest first; a number (0-3) is taken as the same rank.
PRIORITIES = ("low", "normal", "high", "critical")
NORMAL, CRITICAL = 1, 3


@dataclass(frozen=True, slots=True)
class Fixed:
    why: list[str]  # per VM: why ULM may not move it ("" = movable)
    mask: B  # why[v] != ""
    drain_mask: B  # the reasons a drain for maintenance respects too
    gated: B  # held only by a gate a drain ignores (cool-down, daily limit, pin_critical)


def priority(label: str | None) -> int:
    """A VM's rank from its `ulm.priority` label: low 0 ... critical 3; normal without one,
    or with one ULM does not understand (a label is the admin's, not validated input: a typo
    must not stop planning; the explain row shows the rank ULM read)."""
    if label is None:
        return NORMAL
    word = label.strip().lower()
    if word in PRIORITIES:
        return PRIORITIES.index(word)
    return int(word) if word in ("0", "1", "2", "3") else NORMAL


def priorities(snap: Snapshot) -> I64 | None:
    """Per VM rank, or None when no VM carries the label (the usual case: no priority rule
    runs, the plan is what it was without priorities)."""
    if not any(snap.vm_labels):
        return None
    labels = [lab.get(PRIORITY_LABEL) if lab else None for lab in snap.vm_labels]
    if all(x is None for x in labels):
        return None
    return np.array([priority(x) for x in labels], np.int64)


def moves_today(snap: Snapshot, policy: Policy, now: float) -> I64:
    """Each VM's moves on the day of `now`: the snapshot's count, or none on a later day."""
    if not snap.vm_moves_today.any() or day_start(policy, now) > snap.taken_at:
        return np.zeros(snap.n_vms, np.int64)
    return np.asarray(snap.vm_moves_today, np.int64)


def cooldowns(snap: Snapshot, policy: Policy, moved: I64) -> F64:
    """Per VM, how long after its last move it stays: `cooldown_s`, or with a growth above
    1, max(`cooldown_s`, its last migration's duration) x growth ** (moves today - 1), at
    most `max_cooldown_s` (never below `cooldown_s`)."""
    g = policy.gates
    base = np.full(snap.n_vms, g.cooldown_s)
    if g.cooldown_growth == 1.0:
        return base
    took = np.nan_to_num(snap.vm_last_move_s, nan=0.0)
    grown = np.maximum(base, took) * g.cooldown_growth ** np.maximum(moved - 1, 0)
    return np.asarray(np.maximum(base, np.minimum(grown, g.max_cooldown_s)))


def fixed_reasons(snap: Snapshot, policy: Policy, now: float, prio: I64 | None) -> Fixed:
    """Vectorised: the simulator asks this for 1,500 VMs 288 times a day, and nearly every
    VM is movable."""
    n = snap.n_vms
    g = policy.gates
    out = [""] * n
    gated = np.zeros(n, np.bool_)
    # Lowest priority first, so that the most important reason is the one that stays.
    if g.cooldown_s or g.cooldown_growth != 1.0 or g.max_moves_per_vm_per_day is not None:
        moved = moves_today(snap, policy, now)
        wait = cooldowns(snap, policy, moved)
        with np.errstate(invalid="ignore"):
            cooling = now - snap.vm_last_moved < wait  # NaN (never moved) compares False
        for i in np.flatnonzero(cooling).tolist():
            out[i] = _cooling(now - float(snap.vm_last_moved[i]), float(wait[i]),
                              int(moved[i]), policy)
        gated |= cooling
        limit = g.max_moves_per_vm_per_day
        if limit is not None:
            capped = moved >= limit
            for i in np.flatnonzero(capped).tolist():
                out[i] = f"moved {int(moved[i])} times today (limit {limit})"
            gated |= capped
    if prio is not None and policy.constraints.pin_critical:
        critical = prio >= CRITICAL
        for i in np.flatnonzero(critical).tolist():
            out[i] = "pinned (pin_critical)"
        gated |= critical
    hard = np.zeros(n, np.bool_)
    with np.errstate(invalid="ignore"):
        backing = snap.vm_backoff_until > now  # NaN (no back-off) compares False
    if backing.any():
        hard |= backing
        for i in np.flatnonzero(backing).tolist():
            until = _when(float(snap.vm_backoff_until[i]))
            out[i] = f"back-off until {until} after failed migration"
    for mask, why in ((snap.vm_host < 0, "not placed"), (snap.vm_stale, "stale metrics"),
                      (snap.vm_migrating_to >= 0, "migration in flight"),
                      (_pinned(snap, policy), "pinned")):
        if mask.any():  # usually none: skip the scan
            hard |= mask
            for i in np.flatnonzero(mask).tolist():
                out[i] = why
    _not_running(snap, out, hard)
    return Fixed(out, gated | hard, hard, gated & ~hard)


def _not_running(snap: Snapshot, out: list[str], fixed: B) -> None:
    """A paused or crashed VM stays where it is, whatever else holds it ("VM is paused"
    wins: the admin looking at it is the reason). It still counts in full on its host: its
    QEMU process keeps the RAM, and its CPU window (not its idle present) is what it takes
    back when resumed; so it is never free capacity, and a host running only such a VM is
    not empty (never powered off)."""
    if snap.vm_state.count(VmState.RUNNING) == snap.n_vms:  # the usual case, in C
        return
    for i, state in enumerate(snap.vm_state):
        if state is not VmState.RUNNING:
            fixed[i] = True
            out[i] = f"VM is {state.value}"


def _pinned(snap: Snapshot, policy: Policy) -> B:
    pinned = ~snap.vm_migratable
    if policy.constraints.pinned:
        names = set(policy.constraints.pinned)
        pinned = pinned | np.array([v in names for v in snap.vm_names], np.bool_)
    labelled = [i for i, labels in enumerate(snap.vm_labels)
                if labels and labels.get(PINNED_LABEL) == "true"] if any(snap.vm_labels) else []
    if labelled:
        pinned = pinned.copy()
        pinned[labelled] = True
    return pinned


def _cooling(ago: float, wait: float, moved: int, policy: Policy) -> str:
    """The explain text of a VM in its cool-down. Without growth it is the text it always
    was; with growth it says how long is left and why it is that long."""
    g = policy.gates
    if g.cooldown_growth == 1.0:
        return f"cool-down: moved {ago:.0f} s ago"
    why = (f"moved {moved} time(s) today; x{g.cooldown_growth:g} a move" if moved
           else "moved on an earlier day")
    return f"cool-down {_span(wait - ago)} left of {_span(wait)} ({why})"


def _span(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def _when(t: float) -> str:
    """An instant for an explain row: UTC time of day (the simulator's small clocks too)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
