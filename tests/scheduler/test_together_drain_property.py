"""Property (hypothesis): if some host can hold a keep-together group, the drain of the host
in maintenance holding it places the whole group there (and on one host); if none can, none
of it moves. Memory is the only resource that binds here (CPU loads are tiny, memory use is
half the size), so "can hold" is checked from the sizes alone, not by the scheduler."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import host, policy, snap, vm
from ulm.model import HostState, Move
from ulm.policy import Policy
from ulm.scheduler import schedule

KT = "ulm.keep-together"
POLICIES = [policy(), policy('[placement]\nstrategy = "first-fit"\n'),
            policy('[placement]\nstrategy = "balance"\n')]
SIZES = [512.0, 1024.0, 2048.0, 3072.0, 4096.0, 6144.0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group=st.lists(st.sampled_from(SIZES), min_size=2, max_size=4),
       used=st.lists(st.lists(st.sampled_from(SIZES), max_size=3), min_size=1, max_size=4),
       pol=st.sampled_from(POLICIES))
def test_if_some_host_holds_the_group_the_drain_places_it(
        group: list[float], used: list[list[float]], pol: Policy) -> None:
    hosts = [host("src", mem=32768.0, state=HostState.MAINTENANCE),
             *(host(f"h{k}") for k in range(len(used)))]
    vms = [vm(f"g{j}", "src", 0.1, mem=m, labels={KT: "g"}) for j, m in enumerate(group)]
    for k, sizes in enumerate(used):
        vms += [vm(f"o{k}_{j}", f"h{k}", 0.1, mem=m, migratable=False)
                for j, m in enumerate(sizes)]
    holds = any(sum(sizes) + sum(group) <= 16384.0 for sizes in used)
    plan = schedule(snap(hosts, vms), pol, 0.0)
    dsts = {a.vm: a.dst for a in plan.actions if isinstance(a, Move)}
    if holds:
        assert sorted(dsts) == sorted(f"g{j}" for j in range(len(group)))
        assert len(set(dsts.values())) == 1
    else:
        assert dsts == {}
