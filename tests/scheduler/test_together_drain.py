"""A drain places a keep-together group as one unit: each host the first member may go to is
tried for the whole group, in the single-VM score's order, and the drain fails only when no
host holds the group. Hand-computed cases through `schedule`, the production path. Hosts are
8 CPUs, 16 GiB; `first-fit` ranks hosts by index, so the scores below are the host order."""

from __future__ import annotations

import pytest

from tests.builders import host, policy, snap, vm
from ulm.model import HostState, Move, Plan
from ulm.problems import ProblemKind
from ulm.scheduler import schedule
from ulm.scheduler.drain import check_drain

KT = "ulm.keep-together"
FIRST_FIT = policy('[placement]\nstrategy = "first-fit"\n')
TOGETHER = "keep-together: group mates elsewhere"


def moves(plan: Plan) -> list[tuple[str, str, str]]:
    return sorted((a.vm, a.src, a.dst) for a in plan.actions if isinstance(a, Move))


def _cluster(h2_used_mib: float, group_mib: float, h3: bool = True) -> tuple[list, list]:
    hosts = [host("h1", state=HostState.MAINTENANCE), host("h2"),
             *([host("h3")] if h3 else [])]
    vms = [vm("a", "h1", 1.0, mem=group_mib, labels={KT: "g"}),
           vm("b", "h1", 0.5, mem=group_mib, labels={KT: "g"}),
           vm("big", "h2", 1.0, mem=h2_used_mib, migratable=False)]
    return hosts, vms


@pytest.mark.parametrize(("h2_used", "group_mib", "h3", "expected"), [
    # h2 (12 GiB used) takes a (3 GiB: 15 of 16) but not b too (18 of 16): one by one, a
    # chose h2 and b had nowhere to go; as a unit, h3 (next in order) holds both
    (12288.0, 3072.0, True, [("a", "h1", "h3"), ("b", "h1", "h3")]),
    # h2 holds both (14 of 16): the first host in order, as one by one chose
    (10240.0, 2048.0, True, [("a", "h1", "h2"), ("b", "h1", "h2")]),
    # without h3 no host holds the group: no moves, the drain does not fit
    (12288.0, 3072.0, False, []),
])
def test_an_evacuation_places_the_group_on_the_first_host_that_holds_it(
        h2_used: float, group_mib: float, h3: bool, expected: list[tuple[str, str, str]]
) -> None:
    hosts, vms = _cluster(h2_used, group_mib, h3)
    plan = schedule(snap(hosts, vms), FIRST_FIT, 0.0)
    assert moves(plan) == expected
    no_fit = [p for p in plan.issues if p.kind is ProblemKind.DRAIN_NO_FIT]
    assert len(no_fit) == (0 if expected else 1)


def test_the_first_members_row_counts_the_hosts_that_held_it_but_not_the_group() -> None:
    hosts, vms = _cluster(12288.0, 3072.0)
    plan = schedule(snap(hosts, vms), FIRST_FIT, 0.0)
    row = next(d for d in plan.decisions if d.vm == "a")
    assert row.outcome == "moved to h3"
    assert row.rejections == {"source or excluded": 1, TOGETHER: 1}  # h1; h2: a, not b
    # no host holds it: the problem names the first member, h2 counted under keep-together
    hosts, vms = _cluster(12288.0, 3072.0, h3=False)
    plan = schedule(snap(hosts, vms), FIRST_FIT, 0.0)
    (problem,) = [p for p in plan.issues if p.kind is ProblemKind.DRAIN_NO_FIT]
    assert problem.vm == "a" and TOGETHER in str(problem)


def test_a_member_that_fits_nowhere_for_itself_is_the_no_fit() -> None:
    # b (20 GiB) fits on no host at all: the drain fails on b, a stays where it is
    hosts = [host("h1", mem=32768.0, state=HostState.MAINTENANCE), host("h2"), host("h3")]
    vms = [vm("a", "h1", 1.0, mem=1024.0, labels={KT: "g"}),
           vm("b", "h1", 2.0, mem=20480.0, labels={KT: "g"})]
    plan = schedule(snap(hosts, vms), FIRST_FIT, 0.0)
    assert moves(plan) == []
    (problem,) = [p for p in plan.issues if p.kind is ProblemKind.DRAIN_NO_FIT]
    assert problem.vm == "b"  # hungriest first: b leads, and no host takes it


def test_other_vms_of_the_drain_see_the_group_placed() -> None:
    # c (no group, CPU 3.0 hungriest) leaves first, to h2; then the group a + b (3 GiB each):
    # h2 holds a, not b (12 + 2 + 3 + 3 > 16), so both to h3
    hosts, vms = _cluster(12288.0, 3072.0)
    vms.append(vm("c", "h1", 3.0, mem=1024.0))
    plan = schedule(snap(hosts, vms), FIRST_FIT, 0.0)
    assert moves(plan) == [("a", "h1", "h3"), ("b", "h1", "h3"), ("c", "h1", "h2")]


def test_the_drain_check_says_the_group_fits() -> None:
    hosts, vms = _cluster(12288.0, 3072.0)
    report = check_drain(snap(hosts, vms), FIRST_FIT, "h1", 0.0)
    assert report.fits and sorted(m.dst for m in report.moves) == ["h3", "h3"]
