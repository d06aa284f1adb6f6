"""Invariants of `schedule`, checked on generated clusters (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import FLAT, policy
from ulm.model import VM, Host, HostState, Move, Plan, PowerOff, Resources
from ulm.policy import Policy, resolve_policy
from ulm.scheduler import schedule
from ulm.scheduler.draft import Draft
from ulm.scheduler.packing import drain
from ulm.scheduler.relieve import _select, overloaded_hosts
from ulm.scheduler.state import State
from ulm.snapshot import Snapshot

POLICIES = [
    resolve_policy("seed"),
    resolve_policy("balance"),
    resolve_policy("power-save"),
    policy('[overload]\ndetector = "lr"\nsafety = 1.2\n[selection]\nrule = "mmt"\n'
           '[placement]\nstrategy = "pabfd"\n'),
    policy('[overload]\ndetector = "iqr"\n[selection]\nrule = "mc"\n'
           '[consolidation]\nenabled = true\n[gates]\ncooldown_s = 300\n'),
    policy('[overload]\nthreshold = 0.6\nsustain = 1\nwindow = 1\n[selection]\nrule = "cost"\n'
           '[placement]\nstrategy = "balance"\n'
           '[constraints]\nanti_affinity = [["v0", "v1", "v2"]]\n'),
]

STATES = [HostState.ON] * 6 + [HostState.OFF, HostState.MAINTENANCE]


@st.composite
def clusters(draw: st.DrawFn) -> Snapshot:
    n_hosts = draw(st.integers(2, 7))
    hosts = []
    for i in range(n_hosts):
        cores = draw(st.sampled_from([4, 8, 16]))
        hosts.append(Host(f"h{i}", Resources(float(cores), draw(st.sampled_from(
            [8192.0, 16384.0, 32768.0]))), draw(st.sampled_from(STATES)), cores, {}, "flat"))
    vms = []
    free = {h.name: [h.capacity.mem_mib, h.capacity.cpu] for h in hosts}
    for j in range(draw(st.integers(0, 24))):
        h = draw(st.sampled_from(hosts))
        if h.state is HostState.OFF:
            continue
        vcpus = draw(st.sampled_from([1, 2, 4]))
        mem = draw(st.sampled_from([512.0, 1024.0, 2048.0, 4096.0]))
        if free[h.name][0] < mem:  # hosts start within their memory
            continue
        free[h.name][0] -= mem
        hist = tuple(draw(st.lists(st.floats(0.0, float(vcpus)), min_size=1, max_size=14)))
        labels = {"ulm.anti-affinity": "g"} if draw(st.booleans()) and j % 3 == 0 else {}
        vms.append(VM(f"v{j}", h.name, Resources(float(vcpus), mem),
                      Resources(hist[-1], mem * draw(st.floats(0.1, 1.0))), vcpus, labels,
                      draw(st.booleans()) or j % 4 != 0, hist))
    return Snapshot.build(0.0, hosts, vms, [FLAT])


def apply(snap: Snapshot, plan: Plan, now: float) -> Snapshot:
    """The snapshot after the plan ran, with the load unchanged."""
    dst = {m.vm: m.dst for m in plan.actions if isinstance(m, Move)}
    vms = [replace(v, host=dst[v.name], last_moved_at=now) if v.name in dst else v
           for v in snap.vms]
    return Snapshot.build(snap.taken_at + 300, snap.hosts, vms, snap.power_curves.values())


def demand_after(snap: Snapshot, plan: Plan, pol: Policy) -> dict[str, tuple[float, float]]:
    from ulm.scheduler.state import State
    est = State.of(snap, pol, 0.0).demand
    dst = {m.vm: m.dst for m in plan.actions if isinstance(m, Move)}
    out: dict[str, tuple[float, float]] = {h: (0.0, 0.0) for h in snap.host_names}
    for i, v in enumerate(snap.vms):
        where = dst.get(v.name, v.host)
        cpu, mem = out[where]
        out[where] = (cpu + (float(est[i]) if v.name in dst else v.load.cpu),
                      mem + v.size.mem_mib)
    return out


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(clusters(), st.sampled_from(POLICIES))
def test_never_overfills_a_destination(snap: Snapshot, pol: Policy) -> None:
    plan = schedule(snap, pol, 0.0)
    after = demand_after(snap, plan, pol)
    for dst in {m.dst for m in plan.moves}:
        h = snap.hosts[snap.host_index[dst]]
        cpu, mem = after[dst]
        assert cpu <= h.capacity.cpu * pol.placement.cpu_overcommit + 1e-6
        assert mem <= h.capacity.mem_mib * pol.placement.mem_overcommit + 1e-6


@SETTINGS
@given(clusters(), st.sampled_from(POLICIES))
def test_never_breaks_a_constraint(snap: Snapshot, pol: Policy) -> None:
    plan = schedule(snap, pol, 0.0)
    by_name = {v.name: v for v in snap.vms}
    placement = {v.name: v.host for v in snap.vms}
    for m in plan.moves:
        v = by_name[m.vm]
        assert v.migratable and v.name not in pol.constraints.pinned
        assert snap.hosts[snap.host_index[m.dst]].state is HostState.ON
        assert m.src == v.host and m.dst != m.src
        assert snap.hosts[snap.host_index[m.dst]].cores >= v.vcpus
        placement[m.vm] = m.dst
    assert len({m.vm for m in plan.moves}) == len(plan.moves)  # a VM moves at most once
    groups: dict[str, set[str]] = {}
    for k, group in enumerate(pol.constraints.anti_affinity):
        for name in group:
            groups.setdefault(name, set()).add(f"p{k}")
    for v in snap.vms:
        if v.labels.get("ulm.anti-affinity"):
            groups.setdefault(v.name, set()).add("label")
    for m in plan.moves:  # a VM that moved shares no host with a member of its groups
        mine = groups.get(m.vm, set())
        for other, theirs in groups.items():
            if other != m.vm and other in placement and mine & theirs:
                assert placement[other] != m.dst


@SETTINGS
@given(clusters(), st.sampled_from(POLICIES))
def test_never_powers_off_a_host_with_a_vm(snap: Snapshot, pol: Policy) -> None:
    plan = schedule(snap, pol, 0.0)
    dst = {m.vm: m.dst for m in plan.moves}
    occupied = {dst.get(v.name, v.host) for v in snap.vms}
    occupied |= {v.migrating_to for v in snap.vms if v.migrating_to}
    for a in plan.actions:
        if isinstance(a, PowerOff):
            assert a.host not in occupied
            assert snap.hosts[snap.host_index[a.host]].state is HostState.ON


@SETTINGS
@given(clusters(), st.sampled_from(POLICIES))
def test_deterministic(snap: Snapshot, pol: Policy) -> None:
    again = Snapshot.build(snap.taken_at, snap.hosts, snap.vms, snap.power_curves.values())
    assert schedule(snap, pol, 0.0).to_dict() == schedule(again, pol, 0.0).to_dict()


@SETTINGS
@given(clusters(), st.sampled_from(POLICIES))
def test_does_not_reverse_its_own_moves_when_load_is_unchanged(snap: Snapshot,
                                                                 pol: Policy) -> None:
    plan = schedule(snap, pol, 0.0)
    nxt = schedule(apply(snap, plan, 0.0), pol, 300.0)
    back = {(m.vm, m.dst, m.src) for m in plan.moves}
    assert not [m for m in nxt.moves if (m.vm, m.src, m.dst) in back]


def test_the_generator_exercises_moves() -> None:
    """Guard against a generator so tame that the properties above check nothing."""
    moved = 0

    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    @given(clusters(), st.sampled_from(POLICIES))
    def count(snap: Snapshot, pol: Policy) -> None:
        nonlocal moved
        moved += len(schedule(snap, pol, 0.0).moves)

    count()
    assert moved > 20
    assert np.isfinite(moved)


@SETTINGS
@given(clusters(), st.sampled_from(["largest", "mmt", "mu", "cost"]),
       st.sampled_from(["threshold", "lr", "iqr", "mad"]), st.sampled_from([0.5, 1.0]))
def test_compiled_selection_is_the_python_loop(snap: Snapshot, rule: str, detector: str,
                                               mem_threshold: float) -> None:
    """Relief's selection runs compiled for the rules with a key; the Python loop is the
    readable definition (and runs `rs` and `mc`): the same VMs leave, in the same order,
    with the same problems, and the working state ends the same."""
    pol = policy(f'[overload]\ndetector = "{detector}"\nthreshold = 0.5\nsustain = 1\n'
                 f'window = 1\nmemory_threshold = {mem_threshold}\n'
                 f'[selection]\nrule = "{rule}"\n')
    results = []
    for compiled in (True, False):
        state = State.of(snap, pol, 0.0)
        draft = Draft()
        chosen = _select(state, overloaded_hosts(state), draft, compiled=compiled)
        results.append((chosen, draft.problems, state.host_cur.tolist(),
                        state.host_len.tolist(), state.vm_host.tolist()))
    assert results[0] == results[1]


@SETTINGS
@given(clusters(), st.data())
def test_a_drain_that_does_not_fit_changes_nothing(snap: Snapshot, data: st.DataObject) -> None:
    """All or nothing: a drain that fails half-way is undone exactly, to the last bit of every
    per-host sum (taking a VM off and putting it back is not exact in floating point)."""
    busy = sorted({int(h) for h in snap.vm_host if h >= 0})
    if not busy:
        return
    host = data.draw(st.sampled_from(busy))
    state = State.of(snap, policy('[overload]\ndetector = "lr"\n[placement]\n'
                                  'strategy = "pabfd"\n'), 0.0)
    columns = ("host_cur", "host_hist", "host_mem", "host_count", "host_len", "host_lr",
               "biggest", "vm_host", "host_busy", "host_mem_use")
    before = {c: getattr(state, c).copy() for c in columns}
    draft = Draft()
    if drain(state, draft, host, "test", allow_empty=True):
        return
    assert not draft.moves
    for c in columns:
        assert getattr(state, c).tobytes() == before[c].tobytes(), c


# Limits, exactly: loads in tenths of a core (their sums round in floating point) or 32nds
# (exact), hosts whose capacity times the threshold is a whole number of tenths, and hosts
# filled to just below the threshold by the VM size that would take them to it exactly.
LIMITS = [(0.75, [8, 16, 32]), (0.8, [10, 20, 40]), (0.9, [10, 20]), (0.6, [10, 20])]


@st.composite
def at_the_limit(draw: st.DrawFn) -> tuple[Snapshot, Policy]:
    threshold, caps = draw(st.sampled_from(LIMITS))
    step = draw(st.sampled_from([0.1, 1 / 32]))
    sustain = draw(st.sampled_from([1, 3]))
    rule = draw(st.sampled_from(["largest", "mmt", "cost"]))
    strategy = draw(st.sampled_from(["pabfd", "first-fit", "balance"]))
    mem_threshold = draw(st.sampled_from([1.0, 0.9]))
    pol = policy(f"[overload]\nthreshold = {threshold}\nsustain = {sustain}\nwindow = 4\n"
                 f"memory_threshold = {mem_threshold}\n[selection]\nrule = \"{rule}\"\n"
                 f"[placement]\nstrategy = \"{strategy}\"\n")
    sizes = draw(st.lists(st.integers(1, 30), min_size=1, max_size=4))  # VM loads, in steps
    hosts: list[Host] = []
    vms: list[VM] = []
    for i in range(draw(st.integers(2, 6))):
        cap = draw(st.sampled_from(caps))
        limit = round(threshold * cap / step)  # the threshold, in steps
        total = draw(st.sampled_from([limit - draw(st.sampled_from(sizes)),  # one VM short
                                      limit + draw(st.integers(1, 40)),  # overloaded
                                      draw(st.integers(0, limit))]))
        ram = draw(st.sampled_from([16384.0, 65536.0]))  # small: memory pressure binds
        hosts.append(Host(f"h{i}", Resources(float(cap), ram), HostState.ON, cap, {}, "flat"))
        while total > 0:
            k = min(total, draw(st.sampled_from(sizes)))
            total -= k
            load = k * step
            mem = draw(st.sampled_from([1024.0, 4096.0, 8192.0]))
            vms.append(VM(f"v{len(vms)}", f"h{i}", Resources(float(cap), mem),
                          Resources(load, mem * draw(st.sampled_from([0.25, 0.5, 1.0]))), 1,
                          {}, True, (load,) * 4))
    return Snapshot.build(0.0, hosts, vms, [FLAT]), pol


def _overloaded(snap: Snapshot, pol: Policy, now: float) -> np.ndarray:
    """The production detector (CPU and memory), as `schedule` runs it."""
    return np.asarray(overloaded_hosts(State.of(snap, pol, now)))


LIMIT_SETTINGS = settings(max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


@LIMIT_SETTINGS
@given(at_the_limit())
def test_a_plan_never_adds_overloaded_hosts_when_load_is_unchanged(
        case: tuple[Snapshot, Policy]) -> None:
    snap, pol = case
    plan = schedule(snap, pol, 0.0)
    before = _overloaded(snap, pol, 0.0)
    after = _overloaded(apply(snap, plan, 0.0), pol, 300.0)
    assert after.sum() <= before.sum()
    for dst in {m.dst for m in plan.moves}:  # a destination is never overloaded after
        assert not after[snap.host_index[dst]], dst


def test_the_limit_generator_lands_on_the_threshold() -> None:
    """Guard: the generator makes plans that fill a destination to the threshold exactly (as
    a real number), else the properties above would not test the boundary at all."""
    exact = 0

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(at_the_limit())
    def count(case: tuple[Snapshot, Policy]) -> None:
        nonlocal exact
        snap, pol = case
        plan = schedule(snap, pol, 0.0)
        st_after = State.of(apply(snap, plan, 0.0), pol, 300.0)
        for dst in {m.dst for m in plan.moves}:
            h = snap.host_index[dst]
            at = st_after.host_cur[h] / snap.host_cpu[h]
            exact += bool(abs(at - pol.overload.threshold) < 1e-12)

    count()
    assert exact >= 5
