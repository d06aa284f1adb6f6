"""Properties on generated clusters (hypothesis): no plan spreads a keep-together group over
more hosts than it had, and `mode = "repair-only"` makes no move that does not repair a
violation (checked here from the names and labels, not by the scheduler's own finder)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import FLAT, policy
from ulm.model import VM, Host, HostState, Plan, Resources
from ulm.policy import Policy
from ulm.scheduler import schedule
from ulm.snapshot import Snapshot

KT, ANTI = "ulm.keep-together", "ulm.anti-affinity"
BASE = ('[overload]\nthreshold = 0.6\nsustain = 1\nwindow = 1\n'
        '[consolidation]\nenabled = true\n[balance]\nenabled = true\n'
        '[[constraints.host_rules]]\nvms = { app = "web" }\nhosts = { rack = "b" }\n'
        'kind = "must-not"\n')
POLICIES = [policy(BASE), policy(BASE + '[placement]\nstrategy = "balance"\n'),
            policy('mode = "repair-only"\n' + BASE)]
STATES = [HostState.ON] * 5 + [HostState.MAINTENANCE]


@st.composite
def clusters(draw: st.DrawFn) -> Snapshot:
    hosts = [Host(f"h{i}", Resources(8.0, 16384.0), draw(st.sampled_from(STATES)), 8,
                  {"rack": draw(st.sampled_from("ab"))}, "flat")
             for i in range(draw(st.integers(2, 6)))]
    vms, free = [], {h.name: 16384.0 for h in hosts}
    for j in range(draw(st.integers(0, 18))):
        h = draw(st.sampled_from(hosts))
        mem = draw(st.sampled_from([512.0, 1024.0, 2048.0, 4096.0]))
        if free[h.name] < mem:
            continue
        free[h.name] -= mem
        labels = {}
        if draw(st.booleans()):
            labels[KT] = draw(st.sampled_from(["g", "k"]))
        if KT not in labels and draw(st.integers(0, 3)) == 0:  # no contradictory rules
            labels[ANTI] = "w"
        if draw(st.integers(0, 3)) == 0:
            labels["app"] = "web"
        cpu = draw(st.floats(0.0, 4.0))
        vms.append(VM(f"v{j}", h.name, Resources(4.0, mem), Resources(cpu, mem / 2), 2,
                      labels, draw(st.integers(0, 5)) > 0, (cpu,)))
    return Snapshot.build(0.0, hosts, vms, [FLAT])


def spans(snap: Snapshot, where: dict[str, str]) -> dict[str, int]:
    out: dict[str, set[str]] = {}
    for v in snap.vms:
        if KT in v.labels:
            out.setdefault(v.labels[KT], set()).add(where[v.name])
    return {g: len(hs) for g, hs in out.items()}


def after(snap: Snapshot, plan: Plan) -> dict[str, str]:
    where = {v.name: v.host for v in snap.vms}
    where.update({m.vm: m.dst for m in plan.moves})
    return where


SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(clusters(), st.sampled_from(POLICIES))
def test_no_plan_spreads_a_keep_together_group(snap: Snapshot, pol: Policy) -> None:
    plan = schedule(snap, pol, 0.0)
    before, now = spans(snap, after(snap, Plan(0, "", 0.0, ()))), spans(snap, after(snap, plan))
    for g, n in now.items():
        assert n <= before[g], (g, plan.moves)


def broken(snap: Snapshot, where: dict[str, str]) -> set[str]:
    """The VMs in a violation: every VM of a split group, of a doubled anti-affinity pair, or
    on a forbidden host with its group mates there."""
    rack = {h.name: h.labels["rack"] for h in snap.hosts}
    out: set[str] = set()
    for g, n in spans(snap, where).items():
        if n > 1:
            out |= {v.name for v in snap.vms if v.labels.get(KT) == g}
    anti = [v for v in snap.vms if ANTI in v.labels]
    for v in anti:
        if any(u.name != v.name and where[u.name] == where[v.name] for u in anti):
            out.add(v.name)
    for v in snap.vms:
        if v.labels.get("app") == "web" and rack[where[v.name]] == "b":
            out.add(v.name)
            out |= {u.name for u in snap.vms if KT in v.labels and
                    u.labels.get(KT) == v.labels[KT] and where[u.name] == where[v.name]}
    return out


def count(snap: Snapshot, where: dict[str, str]) -> int:
    """How many violations: a group's extra hosts, an anti-affinity host's extra VMs, each VM
    on a host its rule forbids."""
    rack = {h.name: h.labels["rack"] for h in snap.hosts}
    n = sum(k - 1 for k in spans(snap, where).values())
    anti = Counter(where[v.name] for v in snap.vms if ANTI in v.labels)
    n += sum(k - 1 for k in anti.values())
    return n + sum(v.labels.get("app") == "web" and rack[where[v.name]] == "b"
                   for v in snap.vms)


@SETTINGS
@given(clusters())
def test_repair_only_moves_only_to_repair(snap: Snapshot) -> None:
    plan = schedule(snap, POLICIES[2], 0.0)
    maint = {h.name for h in snap.hosts if h.state is HostState.MAINTENANCE}
    before = broken(snap, {v.name: v.host for v in snap.vms})
    for m in plan.moves:
        assert m.src in maint or m.vm in before, (m, before)
        assert m.src in maint or m.reason.startswith("repair: ")
    if plan.moves and not maint & {m.src for m in plan.moves}:
        assert count(snap, after(snap, plan)) < count(snap, {v.name: v.host for v in snap.vms})
