"""Keep-together groups, repair of rule violations, `mode = "repair-only"`, priorities in
balancing and unreadable priority labels: hand-computed cases through `schedule` (and
`check_move`), the production path. Hosts are 8 CPUs, 16 GiB; SEED relieves a host above
75 % (3 of 4 samples) by first fit."""

from __future__ import annotations

import dataclasses

import pytest

from tests.builders import SEED, host, policy, snap, vm
from ulm.errors import ConfigError
from ulm.model import HostState, Move, Plan, PowerOff
from ulm.policy import parse_policy
from ulm.problems import ProblemKind
from ulm.scheduler import schedule
from ulm.scheduler.core import check_move

HOSTS = [host("h1"), host("h2"), host("h3")]
KT = "ulm.keep-together"
TOGETHER = "keep-together: group mates elsewhere"


def moves(plan: Plan) -> list[tuple[str, str, str]]:
    return [(a.vm, a.src, a.dst) for a in plan.actions if isinstance(a, Move)]


def outcome(plan: Plan, name: str) -> str:
    return next(d.outcome for d in plan.decisions if d.vm == name)


def test_relief_never_moves_a_keep_together_vm_alone() -> None:
    # h1 at 6.5/8 = 81 %: "largest" would move big (3.0); big and mate are a group, so mid
    # (2.0) leaves (4.5/8 = 56 %).
    vms = [vm("big", "h1", 3.0, labels={KT: "g"}), vm("mate", "h1", 1.5, labels={KT: "g"}),
           vm("mid", "h1", 2.0)]
    plain = schedule(snap(HOSTS, [dataclasses.replace(v, labels={}) for v in vms]),
                     policy(SEED), 0.0)
    assert moves(plain) == [("big", "h1", "h2")]
    plan = schedule(snap(HOSTS, vms), policy(SEED), 0.0)
    assert moves(plan) == [("mid", "h1", "h2")]
    assert outcome(plan, "big") == "kept: keep-together VMs move only with their group"


@pytest.mark.parametrize(("groups", "expected"), [
    # balance ranking: without a group b takes the emptier h3; with one it follows a to h2
    ({}, [("a", "h1", "h2"), ("b", "h1", "h3")]),
    ({"a": "g", "b": "g"}, [("a", "h1", "h2"), ("b", "h1", "h2")]),
])
def test_a_drain_moves_the_group_to_one_host(groups: dict[str, str],
                                             expected: list[tuple[str, str, str]]) -> None:
    hosts = [host("h1", state=HostState.MAINTENANCE), host("h2"), host("h3")]
    vms = [vm(n, "h1", 2.0, labels={KT: groups[n]} if n in groups else {}) for n in "ab"]
    plan = schedule(snap(hosts, vms), policy('[placement]\nstrategy = "balance"\n'), 0.0)
    assert sorted(moves(plan)) == expected


def test_a_split_group_is_joined_on_the_host_holding_most_of_it() -> None:
    vms = [vm("a", "h1", 1.0, labels={KT: "g"}), vm("b", "h2", 1.0, labels={KT: "g"}),
           vm("c", "h2", 1.0, labels={KT: "g"})]
    plan = schedule(snap(HOSTS, vms), policy(SEED), 0.0)
    assert moves(plan) == [("a", "h1", "h2")]
    (row,) = [d for d in plan.decisions if d.vm == "a"]
    assert row.trigger == "repair: keep-together group g is on 2 hosts; joined on h2"
    assert row.rejections == {"source or excluded": 2}  # a join goes to h2 or nowhere


def test_groups_from_names_and_selectors() -> None:
    vms = [vm("a", "h1", 1.0, labels={"app": "shop"}), vm("b", "h2", 1.0, labels={"app": "shop"}),
           vm("c", "h2", 1.0), vm("d", "h3", 1.0), vm("e", "h1", 1.0)]
    by_label = policy('[constraints]\nkeep_together_labels = [{ app = "shop" }]\n')
    # a tie (one VM each): the lowest-numbered host holds the group; b joins a there
    assert moves(schedule(snap(HOSTS, vms), by_label, 0.0)) == [("b", "h2", "h1")]
    by_name = policy('[constraints]\nkeep_together = [["c", "d", "e"]]\n')
    # c, d, e on h2, h3, h1: one each, a tie: joined on h1 (the lowest-numbered)
    assert sorted(moves(schedule(snap(HOSTS, vms), by_name, 0.0))) == [
        ("c", "h2", "h1"), ("d", "h3", "h1")]


def test_a_join_blocked_by_memory_is_reported() -> None:
    vms = [vm("a", "h1", 1.0, mem=8192, labels={KT: "g"}),
           vm("b", "h2", 1.0, mem=8192, labels={KT: "g"}),
           vm("pin1", "h1", 0.1, mem=8000, migratable=False),
           vm("pin2", "h2", 0.1, mem=8000, migratable=False)]
    plan = schedule(snap(HOSTS, vms), policy(SEED), 0.0)
    assert moves(plan) == []
    (p,) = [p for p in plan.issues if p.kind is ProblemKind.VIOLATION]
    assert p.host == "h1" and p.vms == ("b",)
    assert p.why == ("keep-together group g is on 2 hosts; joined on h1; not repaired: b: "
                     "source or excluded (2), memory full (1)")


def test_anti_affinity_is_repaired_by_moving_the_lowest_priority() -> None:
    vms = [vm("a", "h1", 1.0, labels={"ulm.anti-affinity": "w", "ulm.priority": "high"}),
           vm("b", "h1", 1.0, labels={"ulm.anti-affinity": "w", "ulm.priority": "low"})]
    plan = schedule(snap(HOSTS, vms), policy(SEED), 0.0)
    assert moves(plan) == [("b", "h1", "h2")]
    assert plan.moves[0].reason == "repair: anti-affinity group w has 2 VMs on h1"


RULE = ('[[constraints.host_rules]]\nvms = { app = "web" }\nhosts = { rack = "b" }\n'
        'kind = "must-not"\n')


def test_a_must_not_rule_moves_the_vm_and_its_keep_together_mates() -> None:
    hosts = [host("h1", rack="a"), host("h2", rack="b"), host("h3", rack="a")]
    vms = [vm("web", "h2", 1.0, labels={"app": "web", KT: "g"}),
           vm("cache", "h2", 1.0, labels={KT: "g"}), vm("other", "h2", 1.0)]
    plan = schedule(snap(hosts, vms), policy(SEED + RULE), 0.0)
    assert moves(plan) == [("web", "h2", "h1"), ("cache", "h2", "h1")]
    assert plan.moves[0].reason == "repair: label rule: must not run on rack=b (on h2)"


def test_a_cpu_incompatible_placement_is_repaired() -> None:
    hosts = [dataclasses.replace(host("h1"), cpu_model="Westmere",
                                 cpu_features=frozenset({"sse4.2"})),
             dataclasses.replace(host("h2"), cpu_model="Westmere",
                                 cpu_features=frozenset({"sse4.2"})),
             dataclasses.replace(host("h3"), cpu_model="Skylake",
                                 cpu_features=frozenset({"sse4.2", "avx2"}))]
    web = dataclasses.replace(vm("web", "h1", 1.0), cpu_features=frozenset({"avx2"}))
    plan = schedule(snap(hosts, [web]), policy(SEED), 0.0)
    assert moves(plan) == [("web", "h1", "h3")]
    assert plan.moves[0].reason == "repair: CPU model Westmere lacks feature avx2 (on h1)"


def test_repair_only_repairs_and_does_nothing_else() -> None:
    # h1 is overloaded (6.5/8) and h3's two VMs break anti-affinity; the policy also
    # consolidates: repair-only moves one VM of h3, nothing else (no relief, no power-off).
    vms = [vm("big", "h1", 3.0), vm("mid", "h1", 3.5),
           vm("x", "h3", 0.5, labels={"ulm.anti-affinity": "w"}),
           vm("y", "h3", 0.5, labels={"ulm.anti-affinity": "w"})]
    base = SEED + "[consolidation]\nenabled = true\n"
    normal = schedule(snap(HOSTS, vms), policy(base), 0.0)
    assert ("mid", "h1", "h2") in moves(normal)  # relief
    plan = schedule(snap(HOSTS, vms), policy('mode = "repair-only"\n' + base), 0.0)
    assert moves(plan) == [("y", "h3", "h2")]  # the repair, by first fit
    assert not any(isinstance(a, PowerOff) for a in plan.actions)


def test_balancing_moves_the_lowest_priority_first() -> None:
    # h1 at 5/8 = 62.5 % > mean 20.8 % + 20 %: "cost" would take a; b is low and goes first.
    vms = [vm("a", "h1", 3.0, mem=512), vm("b", "h1", 2.0, mem=4096)]
    pol = policy('[balance]\nenabled = true\n[selection]\nrule = "mmt"\n')
    assert moves(schedule(snap(HOSTS, vms), pol, 0.0))[0][0] == "a"  # least RAM
    vms[1] = dataclasses.replace(vms[1], labels={"ulm.priority": "low"})
    assert moves(schedule(snap(HOSTS, vms), pol, 0.0))[0][0] == "b"


def test_an_unreadable_priority_label_is_a_problem_and_a_row() -> None:
    vms = [vm("a", "h1", 1.0, labels={"ulm.priority": "urgent"}),
           vm("b", "h1", 1.0, labels={"ulm.priority": "High"})]
    plan = schedule(snap(HOSTS, vms), policy(SEED), 0.0)
    (p,) = [p for p in plan.issues if p.kind is ProblemKind.BAD_LABEL]
    assert (p.vm, p.host) == ("a", "h1")
    assert str(p) == ("a has an unreadable label: ulm.priority = 'urgent' is not one of low, "
                      "normal, high, critical or 0-3; taken as normal")
    assert outcome(plan, "a") == "planned as normal priority (priority normal)"


def test_the_executor_recheck_lets_a_group_leave_together_but_never_apart() -> None:
    vms = [vm("a", "h1", 1.0, labels={KT: "g"}), vm("b", "h1", 1.0, labels={KT: "g"}),
           vm("c", "h3", 1.0, labels={KT: "h"}), vm("d", "h2", 1.0, labels={KT: "h"})]
    s = snap(HOSTS, vms)
    # a leaves h1 first (b follows: mates on the source do not hold it back)
    assert check_move(s, policy(SEED), Move("a", "h1", "h2", "drain", 2048.0)) is None
    # c's mate d is on h2: c may join it, never go to h1 (neither has its mate)
    assert check_move(s, policy(SEED), Move("c", "h3", "h2", "repair", 2048.0)) is None
    why = check_move(s, policy(SEED), Move("c", "h3", "h1", "x", 2048.0))
    assert why == f"h1 no longer fits c: {TOGETHER}"


def test_policy_keys_are_validated() -> None:
    pol = parse_policy('mode = "repair-only"\n[constraints]\nkeep_together = [["a", "b"]]\n'
                       'keep_together_labels = [{ app = "shop" }]\n', "<t>")
    assert pol.mode == "repair-only" and pol.constraints.keep_together == (("a", "b"),)
    for bad in ('mode = "repair"\n', '[constraints]\nkeep_together_labels = [{}]\n'):
        with pytest.raises(ConfigError):
            parse_policy(bad, "<t>")
