"""VM groups: anti-affinity (never share a host) and keep-together (always share one).

Both come from the policy (`[constraints] anti_affinity`, `keep_together`: lists of VM names)
and from VM labels (`ulm.anti-affinity`, `ulm.keep-together`: comma-separated group names);
keep-together groups also from selectors (`keep_together_labels`: every VM matching one
selector is one group). The compiled scan reads them as V x G membership matrices
(`membership`); `violations` (repair) and the explain rows read the named groups.

Keep-together, as placement sees it (`filters.TOGETHER`): a VM goes only to a host that holds
one of its mates. Relief and balancing never move such a VM alone (`solo`); a drain, all or
nothing, moves the whole group to one host as one unit: the first host, in the first member's
score order, that holds them all (`grouped`). So no plan spreads a group over more
hosts than it had; a group split already is joined by repair (`repair`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ulm.arrays import B
from ulm.policy import Policy
from ulm.snapshot import Snapshot

ANTI_LABEL = "ulm.anti-affinity"
TOGETHER_LABEL = "ulm.keep-together"


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _named(snap: Snapshot, lists: tuple[tuple[str, ...], ...], label: str
           ) -> list[frozenset[str]]:
    """Per VM its groups: `policy#k` for the k-th name list it is in, `label:g` per label."""
    member: dict[str, set[str]] = {}
    for k, group in enumerate(lists):
        for name in group:
            member.setdefault(name, set()).add(f"policy#{k}")
    out: list[frozenset[str]] = [frozenset()] * snap.n_vms
    labelled = [i for i, labels in enumerate(snap.vm_labels)
                if labels and label in labels] if any(snap.vm_labels) else []
    named = [snap.vm_index[v] for v in member if v in snap.vm_index]
    for i in sorted(set(labelled) | set(named)):
        groups = set(member.get(snap.vm_names[i], ()))
        value = snap.vm_labels[i].get(label)
        if value:
            groups.update(f"label:{g.strip()}" for g in value.split(",") if g.strip())
        out[i] = frozenset(groups)
    return out


def anti_affinity(snap: Snapshot, policy: Policy) -> list[frozenset[str]]:
    return _named(snap, policy.constraints.anti_affinity, ANTI_LABEL)


def keep_together(snap: Snapshot, policy: Policy) -> list[frozenset[str]]:
    """Per VM its keep-together groups (names, labels and selectors, `selector#k`)."""
    c = policy.constraints
    out = _named(snap, c.keep_together, TOGETHER_LABEL)
    if c.keep_together_labels and any(snap.vm_labels):
        for i, labels in enumerate(snap.vm_labels):
            hit = {f"selector#{k}" for k, sel in enumerate(c.keep_together_labels)
                   if labels and _selects(sel, labels)}
            if hit:
                out[i] = out[i] | hit
    return out


def membership(groups: list[frozenset[str]]) -> B:
    """V x G: VM i is in group g (G = 0 without groups: the kernels skip the rule)."""
    if not any(groups):
        return np.zeros((len(groups), 0), np.bool_)
    names = sorted({g for gs in groups for g in gs})
    col = {g: k for k, g in enumerate(names)}
    out = np.zeros((len(groups), len(names)), np.bool_)
    for i, gs in enumerate(groups):
        for g in gs:
            out[i, col[g]] = True
    return out


def solo(together: B) -> B:
    """Per VM: it has a keep-together mate, so it may not move alone (relief, balancing)."""
    if together.shape[1] == 0:
        return np.zeros(together.shape[0], np.bool_)
    sizes = together.sum(axis=0)
    return np.asarray((together & (sizes > 1)[None, :]).any(axis=1))


def shown(name: str) -> str:
    """A group's name as the explain rows and problems show it."""
    kind, _, rest = name.partition(":")
    if kind == "label":
        return rest
    return name.replace("#", " ")
