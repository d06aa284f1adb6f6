"""`[consolidation] order`: which under-loaded host is emptied first, hand-computed cases
through `schedule`, the production path (honest mode: the policy's own order)."""

from __future__ import annotations

import pytest

from tests.builders import host, policy, snap, vm
from ulm.model import VM, Move, Plan
from ulm.scheduler import schedule

HOSTS = [host(f"h{i}") for i in range(1, 5)]  # 8 CPUs, 16 GiB each

# host: VMs (CPU now, RAM MiB) -> utilisation, VMs, drain cost = sum of CPU x RAM
#   h1: a 3.0 x 2048                 37.5 %   1 VM   6144
#   h2: b1, b2 0.5 x 2048 each       12.5 %   2 VMs  2048
#   h3: c1..c3 0.3 x 4096 each       11.25 %  3 VMs  3686.4
#   h4: d 1.5 x 2048                 18.75 %  1 VM   3072
VMS = [vm("a", "h1", 3.0), vm("b1", "h2", 0.5), vm("b2", "h2", 0.5),
       *(vm(f"c{i}", "h3", 0.3, mem=4096.0) for i in (1, 2, 3)), vm("d", "h4", 1.5)]


def sources(plan: Plan) -> set[str]:
    return {a.src for a in plan.actions if isinstance(a, Move)}


def rules(order: str | None) -> str:
    line = f'order = "{order}"\n' if order is not None else ""
    return ("[consolidation]\nenabled = true\nunderload_threshold = 1.0\n"
            f"max_hosts_per_round = 1\npower_off = false\n{line}")


@pytest.mark.parametrize(("order", "emptied"), [
    (None, "h3"),  # the default: the least loaded (11.25 %)
    ("utilisation", "h3"),
    ("fewest-vms", "h4"),  # one VM on h1 and h4: the cheaper (3072 < 6144)
    ("cheapest", "h2"),  # 2048 < 3072 (h4) < 3686.4 (h3) < 6144 (h1)
])
def test_the_order_picks_the_host_to_empty(order: str | None, emptied: str) -> None:
    plan = schedule_with(rules(order))
    assert sources(plan) == {emptied}
    moved = [a.vm for a in plan.actions if isinstance(a, Move)]
    assert sorted(moved) == sorted(v.name for v in VMS if v.host == emptied)


def test_ties_in_cost_go_to_fewer_vms_then_to_the_less_loaded() -> None:
    # every VM idle: every drain costs 0; h1 and h4 (one VM each) tie, then utilisation 0
    # ties too: the lowest index wins
    idle = [vm(v.name, v.host, 0.0, mem=v.size.mem_mib) for v in VMS]
    plan = schedule_with(rules("cheapest"), idle)
    assert sources(plan) == {"h1"}


def schedule_with(toml: str, vms: list[VM] | None = None) -> Plan:
    return schedule(snap(HOSTS, vms if vms is not None else VMS), policy(toml), 1000.0)


def test_fewest_vms_breaks_a_tie_by_the_cheaper_drain_not_the_lower_load() -> None:
    # h1: 1.0 x 4096 = 4096 (12.5 %); h4: 1.5 x 2048 = 3072 (18.75 %): one VM each
    vms = [vm("a", "h1", 1.0, mem=4096.0), *VMS[1:]]
    assert sources(schedule_with(rules("fewest-vms"), vms)) == {"h4"}
    assert sources(schedule_with(rules("utilisation"), vms)) == {"h3"}
