"""Rule-by-rule tables for `schedule`: each test breaks if its rule breaks."""

from __future__ import annotations

import pytest

from tests.builders import FLAT, SEED, host, policy, snap, vm
from ulm.model import HostState, Move, PowerCurve, PowerOff, PowerOn
from ulm.scheduler import schedule, stages
from ulm.snapshot import Snapshot


def moves(plan_actions: tuple[object, ...]) -> list[tuple[str, str, str]]:
    return [(a.vm, a.src, a.dst) for a in plan_actions if isinstance(a, Move)]


HOT = [host("h1"), host("h2"), host("h3")]


def test_seed_moves_the_hungriest_vm_to_the_first_host_that_fits() -> None:
    s = snap(HOT, [vm("small", "h1", 1.5), vm("big", "h1", 3.0), vm("mid", "h1", 2.0),
                   vm("x", "h2", 3.5)])  # h1 at 6.5/8 = 81 %
    plan = schedule(s, policy(SEED), 0.0)
    # big (3.0) leaves first; h2 would reach 6.5/8 = 81 % > 75 %, so the first fit is h3.
    assert moves(plan.actions) == [("big", "h1", "h3")]
    d = plan.decisions[0]
    assert d.vm == "big" and "overload: h1" in d.trigger and d.outcome == "moved to h3"
    assert d.rejections == {"source or excluded": 1, "would overload": 1}
    assert plan.efficacy.hosts_overloaded_before == 1
    assert plan.efficacy.hosts_overloaded_after == 0


def test_keeps_selecting_until_the_host_is_no_longer_overloaded() -> None:
    s = snap(HOT, [vm(f"v{i}", "h1", 1.0, size=1) for i in range(8)])  # 8/8 = 100 %
    plan = schedule(s, policy(SEED), 0.0)
    assert len(moves(plan.actions)) == 2  # 7/8 = 87.5 % is still over, 6/8 = 75 % is not
    assert all(src == "h1" for _, src, _ in moves(plan.actions))


def test_a_blip_does_not_trigger() -> None:
    s = snap(HOT, [vm("v", "h1", 7.0, size=8, history=[2.0, 2.0, 2.0, 7.0])])
    assert schedule(s, policy(SEED), 0.0).actions == ()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("largest", "hungry"),  # most CPU
        ("mmt", "tiny"),  # least RAM
        ("mu", "lazy"),  # smallest share of its own size
        ("cost", "tiny"),  # smallest RAM among those that relieve the host alone
    ],
)
def test_selection_rules(rule: str, expected: str) -> None:
    vms = [vm("hungry", "h1", 3.0, size=4, mem=4096), vm("tiny", "h1", 1.6, size=2, mem=512),
           vm("lazy", "h1", 1.8, size=8, mem=2048)]  # h1 at 6.4/8 = 80 %, excess 0.4
    plan = schedule(snap(HOT, vms), policy(SEED.replace('"largest"', f'"{rule}"')), 0.0)
    assert moves(plan.actions)[0][0] == expected


def test_random_selection_is_reproducible_and_seeded() -> None:
    vms = [vm(f"v{i}", "h1", 1.3) for i in range(5)]  # 6.5/8
    def text(seed: int) -> str:
        return f'[selection]\nrule = "rs"\nseed = {seed}\n'

    runs = {moves(schedule(snap(HOT, vms), policy(text(7)), 0.0).actions)[0][0]
            for _ in range(3)}
    assert len(runs) == 1
    picks = {moves(schedule(snap(HOT, vms), policy(text(k)), 0.0).actions)[0][0]
             for k in range(12)}
    assert len(picks) > 1  # the seed matters


def test_pinned_vm_is_never_moved() -> None:
    vms = [vm("db", "h1", 4.0, migratable=False), vm("web", "h1", 2.5)]
    plan = schedule(snap(HOT, vms), policy(SEED), 0.0)
    assert moves(plan.actions) == [("web", "h1", "h2")]
    by_name = schedule(snap(HOT, [vm("db", "h1", 4.0), vm("web", "h1", 2.5)]),
                       policy(SEED + '[constraints]\npinned = ["db"]\n'), 0.0)
    assert moves(by_name.actions) == [("web", "h1", "h2")]


def test_only_pinned_vms_left_is_a_problem() -> None:
    plan = schedule(snap(HOT, [vm("db", "h1", 7.0, size=8, migratable=False)]), policy(SEED), 0)
    assert plan.actions == ()
    assert any("h1 stays overloaded: no movable VM" in p for p in plan.problems)


@pytest.mark.parametrize(
    ("extra_vm", "dst_host", "reason"),
    [
        (vm("fat", "h2", 5.0, size=6), host("h2"), "would overload"),
        (vm("fat", "h2", 0.1, mem=15000), host("h2"), "memory full"),
        (None, host("h2", cores=2), "too few cores"),
        (None, host("h2", state=HostState.OFF), "host not on"),
        (None, host("h2", state=HostState.MAINTENANCE), "host not on"),
        (vm("web2", "h2", 0.5, labels={"ulm.anti-affinity": "web"}), host("h2"),
         "anti-affinity"),
    ],
)
def test_filters_reject_with_a_reason(extra_vm: object, dst_host: object, reason: str) -> None:
    mover = vm("web1", "h1", 3.0, size=4, mem=4096, vcpus=4, labels={"ulm.anti-affinity": "web"})
    vms = [mover, vm("rest", "h1", 3.5, migratable=False)]
    if extra_vm is not None:
        vms.append(extra_vm)  # type: ignore[arg-type]
    plan = schedule(snap([host("h1"), dst_host], vms), policy(SEED), 0.0)  # type: ignore[list-item]
    assert moves(plan.actions) == []
    assert plan.decisions[0].rejections.get(reason) == 1
    assert any("web1 on h1 could not be placed" in p and reason in p for p in plan.problems)


def test_cpu_overcommit_lets_more_fit() -> None:
    vms = [vm("a", "h1", 7.0, size=8), vm("b", "h2", 2.0, size=8)]
    strict = policy('[overload]\nthreshold = 0.8\nsustain = 1\nwindow = 1\n'
                    '[placement]\nmax_cpu_after = 1.0\n')
    assert moves(schedule(snap(HOT[:2], vms), strict, 0).actions) == []
    loose = policy('[overload]\nthreshold = 0.8\nsustain = 1\nwindow = 1\n'
                   '[placement]\nmax_cpu_after = 2.0\ncpu_overcommit = 2.0\n')
    assert moves(schedule(snap(HOT[:2], vms), loose, 0).actions) == [("a", "h1", "h2")]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("first-fit", "h2"), ("balance", "h4"), ("pabfd", "h3")],
)
def test_placement_strategies(strategy: str, expected: str) -> None:
    # Linear curves: "flat" adds 100 W per full host, "hungry" 300 W. Adding v (3.0 units):
    # h2 hungry +112.5 W, h3 flat +37.5 W, h4 hungry but twice as big +56.25 W.
    hosts = [host("h1"), host("h2", power="hungry"), host("h3"),
             host("h4", cpu=16, cores=16, power="hungry")]
    vms = [vm("v", "h1", 3.0, size=4), vm("w", "h1", 3.5, migratable=False),
           vm("a", "h2", 3.0), vm("b", "h3", 2.0)]
    text = SEED.replace('"first-fit"', f'"{strategy}"')
    hungry = PowerCurve("hungry", (100.0, 400.0))
    plan = schedule(Snapshot.build(0, hosts, vms, [FLAT, hungry]), policy(text), 0.0)
    assert moves(plan.actions) == [("v", "h1", expected)]


def test_cooldown_gate_prevents_ping_pong() -> None:
    vms = [vm("recent", "h1", 4.0, last_moved_at=900.0), vm("old", "h1", 2.5, last_moved_at=0)]
    plan = schedule(snap(HOT, vms), policy(SEED + "[gates]\ncooldown_s = 600\n"), 1000.0)
    assert moves(plan.actions) == [("old", "h1", "h2")]
    later = schedule(snap(HOT, vms), policy(SEED + "[gates]\ncooldown_s = 600\n"), 1600.0)
    assert moves(later.actions) == [("recent", "h1", "h2")]


def test_move_budget_per_round() -> None:
    hosts = [host(f"h{i}") for i in range(1, 6)]
    vms = [vm("a1", "h1", 3.5), vm("a2", "h1", 3.5), vm("b1", "h2", 3.5), vm("b2", "h2", 3.5)]
    plan = schedule(snap(hosts, vms), policy(SEED + "[gates]\nmax_moves_per_round = 1\n"), 0)
    assert len(moves(plan.actions)) == 1
    assert any("move budget" in p for p in plan.problems)


def test_concurrent_migrations_per_host() -> None:
    hosts = [host("h1", cpu=32, cores=32), host("h2", cpu=32, cores=32), host("h3", cpu=32,
                                                                               cores=32)]
    vms = [vm(f"v{i}", "h1", 4.0) for i in range(8)]  # 32/32; 50 % needs four moves
    text = SEED.replace("0.75", "0.5") + "[gates]\nmax_concurrent_per_host = 2\n"
    plan = schedule(snap(hosts, vms), policy(text), 0)
    # h1 is the source of every move: it allows two at once, so only two are planned.
    assert len(moves(plan.actions)) == 2
    assert any("migration slots full" in p for p in plan.problems)


def test_in_flight_migration_counts_on_both_hosts() -> None:
    from ulm.model import VM, Resources
    flying = VM("fly", "h1", Resources(4, 2048), Resources(4.0, 1024), 4, history=(4.0,) * 4,
                migrating_to="h2")
    vms = [flying, vm("hot", "h3", 3.0, size=4), vm("stay", "h3", 4.0, migratable=False)]
    plan = schedule(snap(HOT, vms), policy(SEED), 0)
    # h2 already carries fly's 4.0 while it arrives, h1 still does: hot (3.0) would take
    # either to 7/8 = 87.5 %. Without the in-flight charge h2 would look empty.
    assert moves(plan.actions) == []
    assert plan.decisions[0].rejections.get("would overload") == 2


def test_memory_pressure_triggers() -> None:
    vms = [vm("a", "h1", 0.5, mem=8192, mem_used=8000), vm("b", "h1", 0.5, mem=8192,
                                                           mem_used=7900)]
    text = "[overload]\nmemory_threshold = 0.9\n"
    plan = schedule(snap(HOT, vms), policy(text), 0)
    assert len(moves(plan.actions)) == 1
    assert "memory pressure: h1" in plan.decisions[0].trigger


def test_stale_vm_is_not_moved() -> None:
    from dataclasses import replace
    stale = replace(vm("a", "h1", 7.0, size=8), stale=True)
    plan = schedule(snap(HOT, [stale]), policy(SEED), 0)
    assert moves(plan.actions) == []
    assert any("no movable VM" in p for p in plan.problems)


POWER = """
[consolidation]
enabled = true
reserve_hosts = 0
"""


def test_consolidation_empties_least_loaded_hosts_and_powers_them_off() -> None:
    hosts = [host(f"h{i}") for i in range(1, 5)]
    vms = [vm("a", "h1", 3.0), vm("b", "h2", 1.0), vm("c", "h3", 0.5), vm("d", "h4", 1.0)]
    plan = schedule(snap(hosts, vms), policy(POWER), 0)
    emptied = {src for _, src, _ in moves(plan.actions)}
    assert emptied == {"h2", "h3", "h4"}
    assert {a.host for a in plan.actions if isinstance(a, PowerOff)} == emptied
    assert plan.efficacy.hosts_freed == 3
    # Power-off comes last, after every migration.
    assert all(isinstance(a, PowerOff) for a in stages(plan.actions)[-1])


def test_consolidation_is_all_or_nothing() -> None:
    hosts = [host("h1"), host("h2")]
    vms = [vm("a", "h1", 4.5, size=6), vm("b", "h2", 1.0), vm("c", "h2", 1.5)]
    text = POWER + "[placement]\nmax_cpu_after = 0.75\n"
    plan = schedule(snap(hosts, vms), policy(text), 0)
    # b fits on h1 (5.5/8) but then c does not (7.0 > 6.0): neither moves.
    assert plan.actions == ()


def test_consolidation_keeps_reserve_and_headroom() -> None:
    hosts = [host(f"h{i}") for i in range(1, 5)]
    vms = [vm("a", "h1", 3.0), vm("b", "h2", 0.5), vm("c", "h3", 0.5), vm("d", "h4", 0.5)]
    reserve = schedule(snap(hosts, vms), policy(POWER.replace("= 0", "= 1")), 0)
    assert len([a for a in reserve.actions if isinstance(a, PowerOff)]) == 2
    # 20 % headroom of what stays on: 4.5 units need 5.6 on, so one 8-unit host is enough,
    # while 60 % headroom needs 11.25 -> two hosts stay on.
    tight = schedule(snap(hosts, vms), policy(POWER + "headroom = 0.6\n"), 0)
    on_after = 4 - len([a for a in tight.actions if isinstance(a, PowerOff)])
    assert on_after == 2


def test_consolidation_never_uses_an_empty_host_as_destination() -> None:
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [vm("a", "h1", 0.5), vm("b", "h2", 0.5)]
    plan = schedule(snap(hosts, vms), policy(POWER), 0)
    assert moves(plan.actions) == [("a", "h1", "h2")]
    assert {a.host for a in plan.actions if isinstance(a, PowerOff)} == {"h1", "h3"}


def test_maintenance_drain_all_or_nothing_with_shortfall() -> None:
    hosts = [host("h1", state=HostState.MAINTENANCE), host("h2")]
    fits = schedule(snap(hosts, [vm("a", "h1", 1.0), vm("b", "h1", 1.0)]), policy(), 0)
    assert sorted(moves(fits.actions)) == [("a", "h1", "h2"), ("b", "h1", "h2")]
    big = [vm("a", "h1", 1.0), vm("b", "h1", 1.0, mem=15000)]
    plan = schedule(snap(hosts, big), policy(), 0)
    assert moves(plan.actions) == []
    assert any("the drain of h1 does not fit" in p and "memory full" in p
               for p in plan.problems)


def test_wakes_a_host_when_overload_finds_no_room() -> None:
    hosts = [host("h1"), host("h2"), host("h3", state=HostState.OFF)]
    vms = [vm("a", "h1", 7.0, size=8), vm("b", "h2", 7.0, size=8)]
    plan = schedule(snap(hosts, vms), policy(SEED), 0)
    assert [a.host for a in plan.actions if isinstance(a, PowerOn)] == ["h3"]
    assert moves(plan.actions) == []  # nothing lands on a host that is not ON yet


BALANCE = """
[overload]
detector = "none"
[balance]
enabled = true
spread = 0.2
min_gain = 0.05
"""


def test_balance_moves_from_the_hottest_to_the_coolest_host() -> None:
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [vm("a", "h1", 2.0), vm("b", "h1", 2.0), vm("c", "h1", 1.5), vm("d", "h2", 1.0),
           vm("e", "h3", 0.5)]  # 5.5, 1.0, 0.5 of 8: mean 29 %, h1 at 69 % > 49 %
    plan = schedule(snap(hosts, vms), policy(BALANCE), 0)
    assert moves(plan.actions)[0][1:] == ("h1", "h3")
    assert "balance: h1" in plan.decisions[0].trigger
    # after the plan no host is above mean + spread, and nothing moves back next round
    after = {v.name: v.host for v in snap(hosts, vms).vms}
    for name, _, dst in moves(plan.actions):
        after[name] = dst
    load = {h.name: 0.0 for h in hosts}
    for v in vms:
        load[after[v.name]] += v.load.cpu
    assert max(load.values()) / 8 <= sum(load.values()) / 24 + 0.2


def test_balance_does_nothing_within_the_spread() -> None:
    hosts = [host("h1"), host("h2")]
    vms = [vm("a", "h1", 3.0), vm("b", "h2", 2.0)]  # 37.5 % vs 25 %
    assert schedule(snap(hosts, vms), policy(BALANCE), 0).actions == ()


def test_balance_needs_a_real_gain() -> None:
    hosts = [host("h1"), host("h2")]
    vms = [vm("big", "h1", 6.0, size=8), vm("x", "h2", 0.5)]  # one VM: moving it just swaps
    assert schedule(snap(hosts, vms), policy(BALANCE), 0).actions == ()


SETTLE = POWER + "settle_s = 600\nmin_on_s = 3600\nmax_cycles_per_day = 2\n"


def test_power_off_waits_for_settle_time_min_on_time_and_cycle_budget() -> None:
    from dataclasses import replace
    now = 10_000.0
    base = [host("h1"), host("h2"), host("h3"), host("h4"), host("h5")]
    hosts = [base[0],
             replace(base[1], empty_since=now - 900),  # settled: may sleep
             replace(base[2], empty_since=now - 60),  # emptied a minute ago: not yet
             replace(base[3], empty_since=now - 900, on_since=now - 600),  # woke 10 min ago
             replace(base[4], empty_since=now - 900, power_cycles_24h=2)]  # no cycle left
    plan = schedule(snap(hosts, [vm("a", "h1", 1.0)]), policy(SETTLE), now)
    assert [a.host for a in plan.actions if isinstance(a, PowerOff)] == ["h2"]


def test_a_host_emptied_by_this_plan_sleeps_only_after_settling() -> None:
    hosts = [host("h1"), host("h2")]
    vms = [vm("a", "h1", 1.0), vm("b", "h2", 0.5)]
    plan = schedule(snap(hosts, vms), policy(SETTLE), 0.0)
    assert moves(plan.actions) == [("b", "h2", "h1")]
    assert not [a for a in plan.actions if isinstance(a, PowerOff)]


def test_rotation_switches_off_the_least_cycled_host_first() -> None:
    from dataclasses import replace
    now = 10_000.0
    hosts = [host("h1"), replace(host("h2"), empty_since=0.0, power_cycles_24h=1),
             replace(host("h3"), empty_since=0.0)]
    # 70 % headroom: 3.0 units need 10 on, so only one of h2/h3 may go; h3 has cycled less.
    text = POWER + "headroom = 0.7\n"
    plan = schedule(snap(hosts, [vm("a", "h1", 3.0)]), policy(text), now)
    assert [a.host for a in plan.actions if isinstance(a, PowerOff)] == ["h3"]


def test_pabfd_without_a_power_model_is_best_fit_on_cpu() -> None:
    """Hosts with no power curve: the VM goes to the fullest host that still fits it."""
    hosts = [host("h1", power=""), host("h2", power=""), host("h3", power=""),
             host("h4", power="")]
    vms = [vm("hot1", "h1", 3.5), vm("hot2", "h1", 3.5),  # h1 at 88 %: overloaded
           vm("a", "h2", 1.0), vm("b", "h3", 4.0), vm("c", "h4", 2.0)]
    plan = schedule(Snapshot.build(0.0, hosts, vms, []), policy(SEED.replace(
        'strategy = "first-fit"', 'strategy = "pabfd"')), 0.0)
    # h3 (4.0 + 3.5 = 94 %) would overload; of h2 (56 %) and h4 (69 %) the fuller wins
    assert moves(plan.actions) == [("hot1", "h1", "h4")]
