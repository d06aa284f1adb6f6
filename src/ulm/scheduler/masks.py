"""The per-(VM, host) placement rules as masks: label rules, CPU compatibility, back-off.

Each says, for one VM and one host, "never" (must / must-not label rules, a CPU that lacks a
feature the VM needs, a destination a move of the VM failed to recently) or "rather not"
(should rules). They are decided here, once per round and outside the compiled scan, into one
row per *class* of VMs: VMs with the same rules, the same CPU definition and no back-off of
their own share a row. The scan reads one cell per host (`deny[vm_class[vm], h]`).

Memory stays bounded: a cluster of 200,000 VMs under a few dozen rules has a few dozen classes
(plus one per VM backing off from some destination), so 20,000 hosts cost a few MB, never a
VM x host matrix. Without rules, CPU definitions or back-offs there are no classes at all.

Why a host is denied is data (`Denial`), rendered to the explain text by `describe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ulm.arrays import I64
from ulm.policy import HostRule, Policy
from ulm.scheduler.filters import BACKOFF, CPUMODEL, PASS, REASONS, RULE
from ulm.snapshot import Snapshot

NONE_CLASS = np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True)
class Denial:
    """Why one host is masked for one VM: `code` (a filter code) and its particulars."""

    code: int
    rule: HostRule | None = None  # RULE: the first rule the host fails
    host_model: str = ""  # CPUMODEL: the host's CPU model ...
    feature: str = ""  # ... and the first feature it lacks
    seconds_left: float = 0.0  # BACKOFF


def describe(d: Denial) -> str:
    """The explain table's text for a denial (the filter's reason with its particulars)."""
    if d.code == RULE and d.rule is not None:
        sel = ",".join(f"{k}={v}" for k, v in sorted(d.rule.hosts.items()))
        return f"{REASONS[RULE]}: {d.rule.kind.replace('-', ' ')} run on {sel}"
    if d.code == CPUMODEL:
        return f"CPU model {d.host_model or '(unknown)'} lacks feature {d.feature}"
    if d.code == BACKOFF:
        return f"{REASONS[BACKOFF]} after a failed move ({d.seconds_left:.0f} s left)"
    return REASONS[d.code]


@dataclass(frozen=True, slots=True)
class _Class:
    rules: tuple[int, ...]  # the policy rules whose VM selector matches
    cpu: frozenset[str] | None  # the features the VM's CPU needs (None: not known)
    backoff: tuple[tuple[int, float], ...]  # (host, until) the VM backs off from


@dataclass(frozen=True)
class Masks:
    vm_class: I64  # per VM its row (empty: no classes)
    deny: np.ndarray  # C x H int8: the first masked filter that forbids the host, or PASS
    prefer: np.ndarray  # C x H float32: share of should-rule weight missed (0 x 0: none)
    classes: tuple[_Class, ...] = ()
    rules: tuple[HostRule, ...] = ()
    host_match: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.bool_))
    now: float = 0.0

    def denial(self, snap: Snapshot, vm: int, host: int) -> Denial | None:
        """Why `host` is masked for `vm` (None: it is not)."""
        if len(self.vm_class) == 0:
            return None
        c = int(self.vm_class[vm])
        code = int(self.deny[c, host])
        if code == PASS:
            return None
        k = self.classes[c]
        if code == RULE:
            rule = next(self.rules[r] for r in k.rules if _fails(self.rules[r],
                                                                  self.host_match[r, host]))
            return Denial(code, rule=rule)
        if code == CPUMODEL:
            missing = sorted((k.cpu or frozenset()) - snap.host_cpu_features[host])
            return Denial(code, host_model=snap.host_cpu_model[host], feature=missing[0])
        until = dict(k.backoff)[host]
        return Denial(code, seconds_left=until - self.now)

    def text(self, snap: Snapshot, vm: int, code: int) -> str:
        """The explain text of masked filter `code` for `vm`: that of the first host it masks
        (other than the VM's own), or the bare reason."""
        if len(self.vm_class) == 0:
            return REASONS[code]
        row = self.deny[int(self.vm_class[vm])]
        src = int(snap.vm_host[vm])
        for h in np.flatnonzero(row == code).tolist():
            if h != src:
                d = self.denial(snap, vm, h)
                return describe(d) if d is not None else REASONS[code]
        return REASONS[code]


def _fails(rule: HostRule, match: bool) -> bool:
    return (rule.kind == "must" and not match) or (rule.kind == "must-not" and match)


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def build(snap: Snapshot, policy: Policy, now: float) -> Masks:
    """The classes and their masks for this round (none when nothing applies)."""
    rules = policy.constraints.host_rules
    has_cpu = any(snap.vm_cpu_features) and any(snap.host_cpu_features)
    backing = [dict(b) for b in snap.vm_dest_backoff] if any(snap.vm_dest_backoff) else []
    if not rules and not has_cpu and not any(backing):
        return Masks(NONE_CLASS, np.zeros((0, 0), np.int8), np.zeros((0, 0), np.float32))
    n_h, n_v = snap.n_hosts, snap.n_vms
    # Which rules select each VM: decided per distinct label set (VMs mostly share a few).
    by_labels: dict[tuple[tuple[str, str], ...], tuple[int, ...]] = {}
    keys: dict[_Class, int] = {}
    vm_class = np.zeros(n_v, np.int64)
    index = snap.host_index
    for i in range(n_v):
        labels = snap.vm_labels[i]
        lk = tuple(sorted(labels.items())) if labels else ()
        chosen = by_labels.get(lk)
        if chosen is None:
            chosen = by_labels[lk] = tuple(r for r, rule in enumerate(rules)
                                           if _selects(rule.vms, labels))
        cpu = snap.vm_cpu_features[i] if has_cpu and snap.vm_cpu_features[i] else None
        off = tuple(sorted((index[h], until) for h, until in backing[i].items()
                           if until > now and h in index)) if backing else ()
        vm_class[i] = keys.setdefault(_Class(chosen, cpu, off), len(keys))
    classes = tuple(keys)
    host_match = _host_match(snap, rules)
    deny = np.full((len(classes), n_h), PASS, np.int8)
    should = any(rules[r].kind == "should" for k in classes for r in k.rules)
    weights = np.zeros((len(classes) if should else 0, n_h), np.float32)
    for c, k in enumerate(classes):
        row = deny[c]
        total, missed = 0.0, np.zeros(n_h)
        for r in k.rules:  # the table's order: a later filter fills only what is still open
            rule = rules[r]
            if rule.kind == "should":
                total += rule.weight
                missed += np.where(host_match[r], 0.0, rule.weight)
                continue
            row[(row == PASS) & (~host_match[r] if rule.kind == "must" else host_match[r])] = RULE
        if total > 0:
            weights[c] = missed / total
        if k.cpu is not None:
            lacks = np.array([bool(k.cpu - f) if f else False for f in snap.host_cpu_features])
            row[(row == PASS) & lacks] = CPUMODEL
        for h, _ in k.backoff:
            if row[h] == PASS:
                row[h] = BACKOFF
    return Masks(vm_class, deny, weights, classes, tuple(rules), host_match, now)


def _host_match(snap: Snapshot, rules: tuple[HostRule, ...]) -> np.ndarray:
    """R x H: host h matches rule r's host selector (decided per distinct label set)."""
    out = np.zeros((len(rules), snap.n_hosts), np.bool_)
    seen: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
    for h, labels in enumerate(snap.host_labels):
        lk = tuple(sorted(labels.items())) if labels else ()
        col = seen.get(lk)
        if col is None:
            col = seen[lk] = np.array([_selects(r.hosts, labels) for r in rules], np.bool_)
        out[:, h] = col
    return out
