"""What unfinished actions hold, while several plans run at once; the limits they share.

Plans run in the background and outlive the round that made them, so the next round plans
while earlier actions are queued or in flight. Each unfinished action holds what it touches — a
move its VM, its source and its destination, a power action its host — from the moment its plan
is handed to the executor until its outcome is closed. Three layers keep a new plan off them:

1. `mark` writes every held move into the snapshot's `vm_migrating_to`: the scheduler (pure,
   unchanged) keeps those VMs where they are ("migration in flight"), counts their resources on
   both hosts and their migration slots.
2. `keep_off` marks every held host out of the scheduler's decisions (as a quarantined host
   is: neither source nor destination), so that a new plan picks another destination instead
   of one `admit` would drop; `admit` then drops from a new plan every action that still
   touches a held VM or host (the plan says so in its problems), before the plan is saved.
3. The executor's re-check refuses an action that another plan's unfinished action holds
   (`Cause.HELD`): the last line, whoever hands it a plan (a round, the API, maintenance).

`Slots` bounds the migrations in flight across all plans by the executor's limits
(`max_concurrent`, `max_per_host`), as one plan's stages used to on their own.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterable

import numpy as np

from ulm.model import Action, Move, Plan, PowerOff, PowerOn
from ulm.policy import Policy
from ulm.scheduler import schedule
from ulm.snapshot import Snapshot, quarantined

#: Why a held host is kept out of a new plan (its explain row).
HELD = "held by an unfinished action (a migration or power action in flight)"


def touches(action: Action) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(VMs, hosts) an action holds while it is unfinished."""
    if isinstance(action, Move):
        return (action.vm,), (action.src, action.dst)
    if isinstance(action, PowerOn | PowerOff):
        return (), (action.host,)
    return (), ()


@dataclasses.dataclass
class _Held:
    plan_id: str
    action: Action
    started: bool = False


class Holds:
    """The unfinished actions of every plan this executor runs (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[_Held] = []

    def take(self, plan_id: str, actions: Iterable[Action]) -> None:
        with self._lock:
            self._held.extend(_Held(plan_id, a) for a in actions)

    def has(self, plan_id: str) -> bool:
        with self._lock:
            return any(h.plan_id == plan_id for h in self._held)

    def plans(self) -> set[str]:
        with self._lock:
            return {h.plan_id for h in self._held}

    def start(self, plan_id: str, action: Action) -> None:
        """The action is in flight (a migration started): it counts on both hosts."""
        with self._lock:
            for h in self._held:
                if h.plan_id == plan_id and h.action == action and not h.started:
                    h.started = True
                    return

    def release(self, plan_id: str, action: Action) -> None:
        with self._lock:
            for k, h in enumerate(self._held):
                if h.plan_id == plan_id and h.action == action:
                    del self._held[k]
                    return

    def release_plan(self, plan_id: str) -> None:
        with self._lock:
            self._held = [h for h in self._held if h.plan_id != plan_id]

    def conflict(self, plan_id: str, action: Action) -> str:
        """Why another plan's unfinished action holds what `action` touches ("" = free)."""
        vms, hosts = touches(action)
        with self._lock:
            for h in self._held:
                if h.plan_id == plan_id:
                    continue
                their_vms, their_hosts = touches(h.action)
                for vm in vms:
                    if vm in their_vms:
                        return f"{vm} is held by an unfinished action of plan {h.plan_id}"
                for host in hosts:
                    if host in their_hosts:
                        return f"{host} is held by an unfinished action of plan {h.plan_id}"
        return ""

    def in_flight(self, but: tuple[str, Action] | None = None) -> list[Move]:
        """Migrations started and not ended (except `but`: (plan_id, move))."""
        with self._lock:
            return [h.action for h in self._held if h.started and isinstance(h.action, Move)
                    and (but is None or (h.plan_id, h.action) != but)]

    def moves(self) -> list[Move]:
        """Every held move, queued or in flight."""
        with self._lock:
            return [h.action for h in self._held if isinstance(h.action, Move)]

    def held(self) -> tuple[set[str], set[str]]:
        """(VMs, hosts) held by any unfinished action."""
        vms: set[str] = set()
        hosts: set[str] = set()
        with self._lock:
            for h in self._held:
                v, hs = touches(h.action)
                vms.update(v)
                hosts.update(hs)
        return vms, hosts

    def mark(self, snap: Snapshot) -> Snapshot:
        """The snapshot with every held move as a migration in flight (`vm_migrating_to`)."""
        return mark_moves(snap, self.moves())

    def keep_off(self, snap: Snapshot) -> Snapshot:
        """The snapshot to plan on: every host an unfinished action holds kept out of the
        scheduler's decisions, with the reason its explain row shows."""
        _, hosts = self.held()
        return quarantined(snap, dict.fromkeys(sorted(hosts), HELD)) if hosts else snap

    def plan(self, snap: Snapshot, policy: Policy, now: float) -> Plan:
        """The plan a round makes on `snap` (a preview too): the scheduler stays pure, every
        held host kept out of it (`keep_off`: no held host chosen), what still touches a held
        VM or host dropped from it (`admit`)."""
        return self.admit(schedule(self.keep_off(snap), policy, now))

    def admit(self, plan: Plan) -> Plan:
        """The plan without the actions that touch a held VM or host (each said in problems).
        A power-off of a host whose drain lost a move is dropped too: the host stays busy."""
        vms, hosts = self.held()
        if not vms and not hosts:
            return plan
        keep: list[Action] = []
        problems: list[str] = []
        cut: set[str] = set()  # sources of dropped moves
        for a in plan.actions:
            a_vms, a_hosts = touches(a)
            busy = [x for x in a_vms if x in vms] + [x for x in a_hosts if x in hosts]
            if busy:
                problems.append(f"{_name(a)} not planned: {', '.join(busy)} held by an "
                                "unfinished action")
                if isinstance(a, Move):
                    cut.add(a.src)
                continue
            keep.append(a)
        final = [a for a in keep if not (isinstance(a, PowerOff) and a.host in cut)]
        problems += [f"{_name(a)} not planned: its host keeps a VM that is held"
                     for a in keep if a not in final]
        if not problems:
            return plan
        return dataclasses.replace(plan, actions=tuple(final),
                                   problems=tuple(plan.problems) + tuple(problems))


def _name(a: Action) -> str:
    if isinstance(a, Move):
        return f"move of {a.vm} {a.src}->{a.dst}"
    return f"{a.kind} {a.host}"


def mark_moves(snap: Snapshot, moves: Iterable[Move]) -> Snapshot:
    """`vm_migrating_to` set for each move whose VM and destination the snapshot knows and
    whose VM is not already on its destination (a move that ended, not yet released)."""
    to = snap.vm_migrating_to
    out: np.ndarray | None = None
    for m in moves:
        i, d = snap.vm_index.get(m.vm), snap.host_index.get(m.dst)
        if i is None or d is None or int(snap.vm_host[i]) == d or int(to[i]) == d:
            continue
        if out is None:
            out = to.copy()
        out[i] = d
    return snap if out is None else dataclasses.replace(snap, vm_migrating_to=out)


class Slots:
    """Migrations in flight across every plan: at most `total`, at most `per_host` touching
    one host (as source or destination)."""

    def __init__(self, total: int, per_host: int) -> None:
        self.total, self.per_host = total, per_host
        self._lock = threading.Lock()
        self._n = 0
        self._on: Counter[str] = Counter()

    def take(self, src: str, dst: str, force: bool = False) -> bool:
        with self._lock:
            full = self._n >= self.total or self._on[src] >= self.per_host \
                or self._on[dst] >= self.per_host
            if full and not force:
                return False
            self._n += 1
            self._on[src] += 1
            self._on[dst] += 1
            return True

    def give(self, src: str, dst: str) -> None:
        with self._lock:
            self._n = max(self._n - 1, 0)
            for h in (src, dst):
                self._on[h] -= 1
                if self._on[h] <= 0:
                    del self._on[h]

    @property
    def used(self) -> int:
        with self._lock:
            return self._n
