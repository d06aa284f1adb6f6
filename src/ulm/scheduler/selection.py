"""VM selection rules: which VM leaves an overloaded host next.

Each rule gets the movable VMs still on the host (ascending VM index, which is the host's VM
order) and returns one of them. Ties go to the first candidate, so plans are deterministic.

One definition per rule. "largest", "mmt" and "mu" are keys (`KEYED`: the smallest key
leaves first): the compiled relief loop (`loops.select`) reads the key array, and the Python
loop (priorities, balancing) the same array as a list, made once per plan (`State.key_lists`:
a host has a handful of VMs, relief picks ~8,500 a simulated day, and list indexing is what
kept those picks cheap). "cost" is compiled once (`loops._cost_pick`) and called from both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ulm.arrays import F64, I64
from ulm.scheduler import correlation, loops
from ulm.scheduler.state import State

Rule = Callable[[State, int, list[int]], int]

#: Rules that are "the smallest key leaves first", the key per VM over the whole State.
KEYED: dict[str, Callable[[State], F64]] = {
    "largest": lambda st: -st.vm_cpu,  # the seed's rule: the most CPU-hungry VM first
    "mmt": lambda st: st.snap.vm_mem_size,  # minimum migration time: the least RAM to copy
    # minimum utilisation: the VM using the smallest share of its own size
    "mu": lambda st: st.vm_cpu / np.maximum(st.snap.vm_cpu_size, 1e-12),
}


def _keyed(name: str) -> Rule:
    """The Python loop's form of a keyed rule: the first candidate with the smallest key."""
    def pick(st: State, host: int, cands: list[int]) -> int:
        keys = st.key_lists.get(name)
        if keys is None:
            keys = st.key_lists[name] = KEYED[name](st).tolist()
        return min(cands, key=keys.__getitem__)
    pick.__name__ = name
    return pick


largest, mmt, mu = _keyed("largest"), _keyed("mmt"), _keyed("mu")


def rs(st: State, host: int, cands: list[int]) -> int:
    """Random selection, seeded by the policy, the round's time and the host: reproducible."""
    rng = np.random.default_rng([st.policy.selection.seed, int(st.now), host])
    return int(cands[rng.integers(len(cands))])


def mc(st: State, host: int, cands: list[int]) -> int:
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
    rows = [k for k, v in enumerate(vms.tolist()) if v in cands]
    r2, err = correlation.r2_each(np.ascontiguousarray(data, np.float64),
                                  np.array(rows, np.int64))
    pick = correlation.decided(r2, err)
    if pick >= 0:  # numpy's R^2 ranks the same VM first (`ulm.scheduler.correlation`)
        return int(vms[rows[pick]])
    return _mc_lstsq(data, vms, cands)


def _mc_lstsq(data: F64, vms: I64, cands: list[int]) -> int:
    """`mc`'s choice by numpy's `lstsq`: near ties, and fits the compiled check leaves."""
    best, best_r2 = cands[0], -np.inf
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


def cost(st: State, host: int, cands: list[int]) -> int:
    """ULM's rule: the cheapest migration that relieves the host on its own, else the most
    relief per MiB copied. Fewer, smaller migrations for the same relief (`loops._cost_pick`,
    the one implementation; the candidates here are already the movable ones)."""
    none = st.none_fixed
    return int(loops._cost_pick(np.array(cands, np.int64), host, st.scan_params, st.vm_num,
                                st.host_cur, st.snap.host_cpu, none, none))


RULES: dict[str, Rule] = {
    "largest": largest, "mmt": mmt, "mu": mu, "rs": rs, "mc": mc, "cost": cost,
}
