"""The re-check of one move right before it starts: the core's own rule, on what it touches.

It used to build a whole snapshot from the store per move (at 500 hosts, ~3 s a move), and
after `stale_s` of execution every host's last reading counted as stale, because nothing was
collected while a plan ran. Now the daemon keeps collecting while plans run and hands each
round's snapshot to `feed`; a re-check cuts from it the move's source and destination (with
the VMs on them, and the hosts of migrations in flight towards them), lays the migrations in
flight over it, and asks `check_move` on that: the same filters, a few dozen rows instead of
10,000. "Stale" stays what the snapshot says — the host's own figures stopped arriving —
never that the plan is old. Without a fed snapshot (`ulm apply`, or right after the API
collected) it reads one from the store once and keeps it until the next round feeds one.

It also re-checks the day's migration budget (`[gates] max_migrations_per_day`), as the
planner does: a plan advised in the morning and applied in the afternoon may find the day's
budget spent by then. The count is the store's (`started_since`: the journal's move intents
since the policy's midnight, this plan's own started ones included), asked per move, so that
every move of every plan counts; a move off a host in maintenance is never held back (its
drain counts, as in the planner). The count and the move's intent are one step: the executor
asks `budget` and writes the intent under one lock (`Executor._reserve`), so two plans' threads
(the API's apply and a round's, in the background) never both take the day's last migration.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ulm.budget import day_start, left_at
from ulm.execute.holds import mark_moves
from ulm.execute.types import Cause
from ulm.model import HostState, Move
from ulm.policy import Policy
from ulm.scheduler import check_move
from ulm.snapshot import Snapshot

_SKIP = ("taken_at", "power_curves", "name", "migrations_today")  # not per host or VM


class Refusal(str):
    """A re-check's answer with its kind (`cause`): the executor records that cause."""

    cause: Cause

    def __new__(cls, text: str, cause: Cause) -> Refusal:
        self = super().__new__(cls, text)
        self.cause = cause
        return self


def budget_refusal(snap: Snapshot, policy: Policy, move: Move, now: float,
                   started_since: Callable[[float], int]) -> Refusal | None:
    """The day's budget at `now`, asked for one move: None = it may start."""
    if policy.effective(now)[0].gates.max_migrations_per_day is None:
        return None  # no budget: no count asked
    src = snap.host_index.get(move.src)
    if src is not None and snap.host_state[src] is HostState.MAINTENANCE:
        return None  # a drain for maintenance is never held back
    day = left_at(policy, now, started_since(day_start(policy, now)))
    if day.left is None or day.left > 0:
        return None
    return Refusal(f"today's migration budget used up ({day.used} of {day.limit} started "
                   f"today): {move.vm} waits for tomorrow", Cause.DAY_BUDGET)


def around(snap: Snapshot, hosts: Sequence[int]) -> Snapshot:
    """The snapshot cut down to `hosts` (indices) and the VMs placed on them; a migration
    towards a host left out is dropped (it counts on its source, which is kept)."""
    keep_h = np.array(sorted(set(hosts)), np.int64)
    remap = np.full(snap.n_hosts, -1, np.int64)
    remap[keep_h] = np.arange(len(keep_h))
    keep_v = np.flatnonzero(np.isin(snap.vm_host, keep_h))
    cols: dict[str, object] = {}
    for f in dataclasses.fields(snap):
        if f.name in _SKIP:
            continue
        value = getattr(snap, f.name)
        rows = keep_h if f.name.startswith("host_") else keep_v
        if isinstance(value, np.ndarray):
            cols[f.name] = value[rows] if len(value) else value
        else:
            cols[f.name] = tuple(value[int(i)] for i in rows)
    cols["vm_host"] = remap[snap.vm_host[keep_v]]
    to = snap.vm_migrating_to[keep_v]
    cols["vm_migrating_to"] = np.where(to >= 0, remap[np.maximum(to, 0)], -1)
    return dataclasses.replace(snap, **cols)  # type: ignore[arg-type]


def check_around(snap: Snapshot, policy: Policy, move: Move,
                 in_flight: Iterable[Move] = ()) -> str | None:
    """`check_move` on the move's hosts only, with the migrations in flight counted."""
    vm, src, dst = (snap.vm_index.get(move.vm), snap.host_index.get(move.src),
                    snap.host_index.get(move.dst))
    if vm is None or dst is None:
        return f"{move.vm if vm is None else move.dst} is not in the current snapshot"
    flights = [m for m in in_flight if m.vm != move.vm]
    ends = {move.src, move.dst}
    hosts = {dst, int(snap.vm_host[vm])} | ({src} if src is not None else set())
    for m in flights:  # a VM on its way to one of them counts there: keep its source too
        if m.dst in ends and m.src in snap.host_index:
            hosts.add(snap.host_index[m.src])
    hosts.discard(-1)
    small = mark_moves(around(snap, sorted(hosts)), flights)
    return check_move(small, policy, move)


class SnapshotCheck:
    """The executor's `check`: fed by the daemon every round, read by the executor's threads
    (one reference swapped: no lock needed)."""

    def __init__(self, policy: Callable[[], Policy], fresh: Callable[[], Snapshot],
                 started_since: Callable[[float], int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._policy = policy
        self._fresh = fresh
        self._started_since = started_since  # `Store.migrations_since`; None: no budget check
        self._clock = clock
        self._snap: Snapshot | None = None

    def feed(self, snap: Snapshot | None) -> None:
        """The round's snapshot (without in-flight marks); None: read one afresh next time."""
        self._snap = snap

    def _snapshot(self) -> Snapshot:
        snap = self._snap
        if snap is None:
            snap = self._snap = self._fresh()
        return snap

    def budget(self, move: Move) -> Refusal | None:
        """The day's budget for this move (None: it may start). The executor asks it under
        the lock it writes the move's intent under: counted and taken in one step."""
        if self._started_since is None:
            return None
        return budget_refusal(self._snapshot(), self._policy(), move, self._clock(),
                              self._started_since)

    def __call__(self, move: Move, in_flight: Iterable[Move] = (),
                 with_budget: bool = True) -> str | None:
        snap, policy = self._snapshot(), self._policy()
        if with_budget:
            refused = self.budget(move)
            if refused is not None:
                return refused
        return check_around(snap, policy, move, in_flight)
