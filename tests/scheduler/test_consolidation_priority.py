"""Consolidation under its limits empties the hosts of the lowest priority first: a host
whose most important VM ranks lower is a candidate before any other, whatever the order
(`[consolidation] order`); within a rank, the order as without priorities. Hand-computed
cases through `schedule`. Hosts are 8 CPUs, 16 GiB; one host emptied a round."""

from __future__ import annotations

import pytest

from tests.builders import host, policy, snap, vm
from ulm.model import Move, Plan
from ulm.scheduler import schedule

PRIO = "ulm.priority"


def emptied(plan: Plan) -> list[str]:
    return sorted({a.src for a in plan.actions if isinstance(a, Move)})


def _pol(order: str) -> str:
    return (f'[consolidation]\nenabled = true\nmax_hosts_per_round = 1\norder = "{order}"\n'
            'underload_threshold = 0.5\n')


@pytest.mark.parametrize("order", ["utilisation", "fewest-vms", "cheapest"])
@pytest.mark.parametrize(("ranks", "expected"), [
    # no priorities: h1 (0.5 CPU, 1 VM) is the first candidate in every order
    ((None, None), ["h1"]),
    # h1's VM critical, h2's low: h2 empties first (lower top rank), h1 waits
    (("critical", "low"), ["h2"]),
    # equal ranks: the order without priorities
    (("high", "high"), ["h1"]),
    # h1's top is normal (no label), h2's low: h2
    ((None, "low"), ["h2"]),
])
def test_the_lowest_priority_host_empties_first(order: str, ranks: tuple[str | None, str | None],
                                                expected: list[str]) -> None:
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [vm("a", "h1", 0.5, labels={PRIO: ranks[0]} if ranks[0] else {}),
           vm("b", "h2", 1.0, labels={PRIO: ranks[1]} if ranks[1] else {}),
           vm("c", "h2", 0.5, labels={PRIO: ranks[1]} if ranks[1] else {}),
           vm("d", "h3", 3.0, migratable=False)]
    plan = schedule(snap(hosts, vms), policy(_pol(order)), 0.0)
    assert emptied(plan) == expected


def test_a_host_with_one_critical_vm_waits_for_the_hosts_without() -> None:
    # h1's top rank is critical (one of two VMs), h2 all normal: h2 first although h1 is
    # emptier
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [vm("a", "h1", 0.2, labels={PRIO: "critical"}), vm("a2", "h1", 0.2,
                                                               labels={PRIO: "low"}),
           vm("b", "h2", 1.5), vm("d", "h3", 3.0, migratable=False)]
    plan = schedule(snap(hosts, vms), policy(_pol("utilisation")), 0.0)
    assert emptied(plan) == ["h2"]
    unranked = schedule(snap(hosts, [v for v in vms if v.name not in ("a", "a2")]
                             + [vm("a", "h1", 0.2), vm("a2", "h1", 0.2)]),
                        policy(_pol("utilisation")), 0.0)
    assert emptied(unranked) == ["h1"]
