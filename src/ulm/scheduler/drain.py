"""Can a host be drained, how long would it take, and what is missing if not? Pure.

Used when an admin books maintenance (to say early that the drain does not fit) and again as
the window nears. A drain is all-or-nothing and respects every constraint: it is the same
evacuation the scheduler runs for a host in maintenance, on a copy of the snapshot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ulm.budget import UNLIMITED, DayBudget, day_budget
from ulm.model import HostState, Move, Plan
from ulm.policy import Policy
from ulm.scheduler.core import schedule
from ulm.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class DrainReport:
    host: str
    fits: bool
    moves: tuple[Move, ...]
    stuck: tuple[str, ...]  # VMs that cannot leave, with why
    cpu_short: float  # cpu units missing elsewhere (0 when it fits)
    mem_short_mib: float
    lead_time_s: float  # estimated time to drain at the measured migration speed
    #: The day's migration budget on the drain's day (`ulm.budget`): the moves it would go
    #: past it (it is never held back by it: it counts, and the other moves wait), the budget.
    past_budget: int = 0
    budget: DayBudget = UNLIMITED

    def summary(self) -> str:
        if self.fits:
            past = (f"; {self.past_budget} move(s) past the day's migration budget "
                    f"({self.budget.used} of {self.budget.limit} used): a drain for "
                    "maintenance goes ahead, other moves wait for the next day"
                    if self.past_budget else "")
            return (f"drain of {self.host} fits: {len(self.moves)} VM(s), about "
                    f"{self.lead_time_s:.0f} s{past}")
        short = []
        if self.cpu_short > 0:
            short.append(f"{self.cpu_short:.1f} CPU short")
        if self.mem_short_mib > 0:
            short.append(f"{self.mem_short_mib / 1024:.1f} GiB short")
        detail = "; ".join(self.stuck) if self.stuck else "no combination of hosts fits"
        return (f"the drain of {self.host} does not fit"
                f"{' (' + ', '.join(short) + ')' if short else ''}: {detail}")


def check_drain(snapshot: Snapshot, policy: Policy, host: str, now: float,
                mib_per_s: float = 100.0, parallel: int = 1,
                at: float | None = None) -> DrainReport:
    """Plans the evacuation of `host` as if it were in maintenance now; `at` (default: now)
    is when the drain is due, for the day's migration budget it would go past."""
    idx = snapshot.host_index[host]
    states = list(snapshot.host_state)
    states[idx] = HostState.MAINTENANCE
    trial = dataclasses.replace(snapshot, host_state=tuple(states))
    # A drain ignores packing and the move budgets (as the scheduler's evacuation does):
    # every VM must go, and only the constraints decide whether it can.
    pol = policy.model_copy(update={
        "consolidation": policy.consolidation.model_copy(update={"enabled": False}),
        "gates": policy.gates.model_copy(update={"max_moves_per_round": None}),
        "calendar": None, "office": None, "night": None,
    })
    plan = schedule(trial, pol, now)
    moves = tuple(m for m in plan.moves if m.src == host)
    on_host = [i for i in range(snapshot.n_vms) if snapshot.vm_host[i] == idx]
    fits = len(moves) == len(on_host)
    cpu_short, mem_short = (0.0, 0.0) if fits else _shortfall(snapshot, idx, on_host)
    mem = sum(m.mem_mib for m in moves) if fits else float(snapshot.vm_mem_size[on_host].sum())
    when = now if at is None else at
    day = day_budget(policy, policy.effective(when)[0], snapshot.taken_at,
                     snapshot.migrations_today, when)
    past = max(len(moves) - day.left, 0) if fits and day.left is not None else 0
    return DrainReport(
        host=host, fits=fits, moves=moves if fits else (),
        stuck=tuple(_stuck(plan, host)) if not fits else (),
        cpu_short=cpu_short, mem_short_mib=mem_short,
        lead_time_s=mem / max(mib_per_s, 1e-9) / max(parallel, 1),
        past_budget=past, budget=day,
    )


def _stuck(plan: Plan, host: str) -> list[str]:
    """The plan's problems about `host` (the summary names the host already)."""
    return [p.detail for p in plan.issues if p.host == host]


def _shortfall(snap: Snapshot, idx: int, on_host: list[int]) -> tuple[float, float]:
    """What the other ON hosts lack to take the host's VMs (a lower bound): in total, or —
    when the total would do but the room is split up — on the roomiest host for the biggest
    VM, which is what blocks the drain then."""
    others = [h for h in range(snap.n_hosts) if h != idx and snap.host_on[h]]
    cpu_free, mem_free = [], []
    for h in others:
        vms = snap.vm_host == h
        cpu_free.append(max(float(snap.host_cpu[h] - snap.vm_cpu[vms].sum()), 0.0))
        mem_free.append(max(float(snap.host_mem[h] - snap.vm_mem_size[vms].sum()), 0.0))
    cpu_short = float(snap.vm_cpu[on_host].sum()) - sum(cpu_free)
    mem_short = float(snap.vm_mem_size[on_host].sum()) - sum(mem_free)
    if on_host:
        cpu_short = max(cpu_short, float(snap.vm_cpu[on_host].max()) - max(cpu_free, default=0))
        mem_short = max(mem_short,
                        float(snap.vm_mem_size[on_host].max()) - max(mem_free, default=0))
    return max(cpu_short, 0.0), max(mem_short, 0.0)
