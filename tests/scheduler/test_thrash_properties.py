"""Invariants of the anti-thrash gates and VM priorities, on generated clusters (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import FLAT, policy
from ulm.model import VM, Host, HostState, Move, Plan, Resources
from ulm.policy import Policy
from ulm.scheduler import schedule
from ulm.scheduler.state import State
from ulm.snapshot import Snapshot

NOW = 5000.0  # the snapshots are taken at 0: the same (UTC) day
WORDS = ["low", "normal", "high", "critical", "2", None, None]
RANK = {"low": 0, "normal": 1, "high": 2, "critical": 3, "2": 2, None: 1}
STATES = [HostState.ON] * 5 + [HostState.MAINTENANCE]
BASE = ('[overload]\nthreshold = 0.6\nsustain = 1\nwindow = 1\n[selection]\nrule = "{rule}"\n'
        '[placement]\nstrategy = "first-fit"\n')
GATES = ("[gates]\ncooldown_s = {base}\ncooldown_growth = {growth}\nmax_cooldown_s = {cap}\n"
         "max_moves_per_vm_per_day = {limit}\n[constraints]\npin_critical = {pin}\n")


@st.composite
def clusters(draw: st.DrawFn) -> Snapshot:
    hosts = [Host(f"h{i}", Resources(8.0, 16384.0), draw(st.sampled_from(STATES)), 8, {},
                  "flat") for i in range(draw(st.integers(2, 6)))]
    vms = []
    for j in range(draw(st.integers(0, 20))):
        h = draw(st.sampled_from(hosts))
        load = draw(st.floats(0.1, 4.0))
        word = draw(st.sampled_from(WORDS))
        labels = {} if word is None else {"ulm.priority": word}
        today = draw(st.integers(0, 5))
        at = draw(st.one_of(st.none(), st.floats(0.0, NOW)))
        took = draw(st.one_of(st.none(), st.floats(0.0, 3000.0)))
        vms.append(VM(f"v{j}", h.name, Resources(4.0, 1024.0), Resources(load, 512.0), 4,
                      labels, True, (load,), last_moved_at=at, moves_today=today,
                      last_move_s=took))
    return Snapshot.build(0.0, hosts, vms, [FLAT])


@st.composite
def policies(draw: st.DrawFn) -> tuple[Policy, dict[str, float]]:
    knobs = {"base": draw(st.sampled_from([0, 300, 1200])),
             "growth": draw(st.sampled_from([1, 2, 3])),
             "cap": draw(st.sampled_from([600, 3600, 86400])),
             "limit": draw(st.integers(1, 4))}
    pin = draw(st.booleans())
    rule = draw(st.sampled_from(["largest", "mmt", "cost", "rs", "mc"]))
    text = BASE.format(rule=rule) + GATES.format(**knobs, pin=str(pin).lower())
    return policy(text), {**knobs, "pin": float(pin)}


def cooldown(v: VM, k: dict[str, float]) -> float:
    """The rule as docs/policy.md states it, written out independently."""
    if k["growth"] == 1:
        return k["base"]
    grown = max(k["base"], v.last_move_s or 0.0) * k["growth"] ** max(v.moves_today - 1, 0)
    return max(k["base"], min(grown, k["cap"]))


def src_state(snap: Snapshot, m: Move) -> HostState:
    return snap.host_state[snap.host_index[m.src]]


SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(clusters(), policies())
def test_only_a_maintenance_drain_passes_a_gate(snap: Snapshot,
                                                 pk: tuple[Policy, dict[str, float]]) -> None:
    pol, k = pk
    plan = schedule(snap, pol, NOW)
    vms = {v.name: v for v in snap.vms}
    for m in plan.moves:
        if src_state(snap, m) is HostState.MAINTENANCE:
            continue
        v = vms[m.vm]
        assert v.moves_today < k["limit"]
        assert v.last_moved_at is None or NOW - v.last_moved_at >= cooldown(v, k)
        assert not (k["pin"] and RANK[v.labels.get("ulm.priority")] == 3)


@SETTINGS
@given(clusters(), policies())
def test_a_maintenance_drain_is_the_same_with_or_without_the_gates(
        snap: Snapshot, pk: tuple[Policy, dict[str, float]]) -> None:
    """Evacuation runs first in a round and ignores every anti-thrash gate: it moves the
    same VMs to the same hosts whatever the gates say."""
    pol = pk[0]
    free = policy(BASE.format(rule=pol.selection.rule))

    def drained(p: Plan) -> list[tuple[str, str, str]]:
        return [(m.vm, m.src, m.dst) for m in p.moves if m.reason.startswith("evacuation")]

    assert drained(schedule(snap, pol, NOW)) == drained(schedule(snap, free, NOW))


@SETTINGS
@given(clusters(), st.sampled_from(["largest", "mmt", "cost", "rs"]))
def test_without_the_new_keys_the_history_changes_nothing(snap: Snapshot, rule: str) -> None:
    """The defaults reproduce the plan as it was before per-VM histories and priorities."""
    pol = policy(BASE.format(rule=rule) + "[gates]\ncooldown_s = 600\n")
    plain = Snapshot.build(0.0, snap.hosts, [
        replace(v, moves_today=0, last_move_s=None,
                labels={}) for v in snap.vms], [FLAT])
    ranked = Snapshot.build(0.0, snap.hosts, [
        replace(v, labels={}) for v in snap.vms], [FLAT])
    a, b = schedule(ranked, pol, NOW), schedule(plain, pol, NOW)
    assert a.actions == b.actions and a.decisions == b.decisions and a.problems == b.problems


@SETTINGS
@given(clusters(), policies())
def test_a_vm_leaves_an_overloaded_host_only_after_every_lower_priority_one(
        snap: Snapshot, pk: tuple[Policy, dict[str, float]]) -> None:
    pol = pk[0]
    plan = schedule(snap, pol, NOW)
    fixed = State.of(snap, pol, NOW).fixed_mask
    relief = [d for d in plan.decisions
              if d.vm and d.trigger.startswith(("overload: ", "memory pressure: "))]
    selected = {d.vm for d in relief if not fixed[snap.vm_index[d.vm]]}
    for d in relief:
        if d.vm not in selected:
            continue
        rank = RANK[snap.vms[snap.vm_index[d.vm]].labels.get("ulm.priority")]
        for v in snap.vms:
            i = snap.vm_index[v.name]
            if v.host == d.host and not fixed[i] and RANK[v.labels.get("ulm.priority")] < rank:
                assert v.name in selected, (d.vm, v.name)
        if any("ulm.priority" in v.labels for v in snap.vms):  # else no row says a rank
            word = ["low", "normal", "high", "critical"][rank]
            assert d.outcome.endswith(f"(priority {word})")
