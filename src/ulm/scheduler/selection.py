"""VM selection rules: which VM leaves an overloaded host next.

Each rule gets the movable VMs still on the host (ascending VM index, which is the host's VM
order) and returns one of them. Ties go to the first candidate, so plans are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ulm.arrays import I64
from ulm.scheduler.state import State

Rule = Callable[[State, int, I64], int]


def largest(st: State, host: int, cands: I64) -> int:
    """The seed's rule: the most CPU-hungry VM first."""
    return int(cands[np.argmax(st.vm_cpu[cands])])


def mmt(st: State, host: int, cands: I64) -> int:
    """Minimum migration time: the VM with the least RAM to copy."""
    return int(cands[np.argmin(st.snap.vm_mem_size[cands])])


def mu(st: State, host: int, cands: I64) -> int:
    """Minimum utilisation: the VM using the smallest share of its own size."""
    size = np.maximum(st.snap.vm_cpu_size[cands], 1e-12)
    return int(cands[np.argmin(st.vm_cpu[cands] / size)])


def rs(st: State, host: int, cands: I64) -> int:
    """Random selection, seeded by the policy, the round's time and the host: reproducible."""
    rng = np.random.default_rng([st.policy.selection.seed, int(st.now), host])
    return int(cands[rng.integers(len(cands))])


def mc(st: State, host: int, cands: I64) -> int:
    """Maximum correlation: the VM whose load is best explained by its neighbours' loads.

    Multiple correlation (R^2 of an OLS fit of one VM's history on the others'), as in
    Beloglazov & Buyya; falls back to MMT when the history is too short to fit.
    """
    vms = st.vms_on(host)
    if len(cands) < 2 or len(vms) < 2:
        return mmt(st, host, cands)
    hist = st.snap.vm_history[vms]
    ok = ~np.isnan(hist).any(axis=0)
    data = hist[:, ok]
    if data.shape[1] <= len(vms):  # not enough samples for a regression on the others
        return mmt(st, host, cands)
    best, best_r2 = int(cands[0]), -np.inf
    for k, v in enumerate(vms):
        if v not in cands:
            continue
        y = data[k]
        x = np.column_stack([np.ones(data.shape[1]), np.delete(data, k, axis=0).T])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ coef
        total = ((y - y.mean()) ** 2).sum()
        r2 = 1.0 - (resid @ resid) / total if total > 0 else 0.0
        if r2 > best_r2:
            best, best_r2 = int(v), r2
    return best


def cost(st: State, host: int, cands: I64) -> int:
    """ULM's rule: the cheapest migration that relieves the host on its own, else the most
    relief per MiB copied. Fewer, smaller migrations for the same relief."""
    rule = st.policy.overload
    cap = float(st.snap.host_cpu[host])
    excess = float(st.host_cur[host]) - rule.threshold * cap
    cpu = st.vm_cpu[cands]
    mem = st.snap.vm_mem_size[cands]
    enough = cpu >= excess
    if enough.any():
        idx = np.flatnonzero(enough)
        return int(cands[idx[np.argmin(mem[idx])]])
    return int(cands[np.argmax(cpu / np.maximum(mem, 1.0))])


RULES: dict[str, Rule] = {
    "largest": largest, "mmt": mmt, "mu": mu, "rs": rs, "mc": mc, "cost": cost,
}
