"""Drain checks: all-or-nothing, every constraint, a shortfall named, a lead time."""

from __future__ import annotations

from tests.builders import host, policy, snap, vm
from ulm.scheduler import check_drain

HOSTS = [host("h1"), host("h2"), host("h3")]


def test_drain_fits_and_estimates_its_lead_time() -> None:
    s = snap(HOSTS, [vm("a", "h1", 1.0, mem=2048), vm("b", "h1", 1.0, mem=1024),
                     vm("c", "h2", 1.0)])
    report = check_drain(s, policy(), "h1", 0.0, mib_per_s=100.0)
    assert report.fits and {m.vm for m in report.moves} == {"a", "b"}
    assert all(m.dst in ("h2", "h3") for m in report.moves)
    assert report.lead_time_s == 30.72  # 3072 MiB at 100 MiB/s
    assert "drain of h1 fits: 2 VM(s)" in report.summary()


def test_drain_that_does_not_fit_names_the_shortfall() -> None:
    hosts = [host("h1"), host("h2", mem=4096)]
    s = snap(hosts, [vm("a", "h1", 1.0, mem=3072), vm("b", "h1", 1.0, mem=3072)])
    report = check_drain(s, policy(), "h1", 0.0)
    assert not report.fits and report.moves == ()
    assert report.mem_short_mib == 2048.0
    assert "the drain of h1 does not fit (2.0 GiB short)" in report.summary()


def test_a_pinned_vm_blocks_the_drain() -> None:
    s = snap(HOSTS, [vm("a", "h1", 1.0), vm("db", "h1", 1.0, migratable=False)])
    report = check_drain(s, policy(), "h1", 0.0)
    assert not report.fits
    assert any("db" in why for why in report.stuck)


def test_anti_affinity_is_respected_by_the_drain() -> None:
    group = {"ulm.anti-affinity": "web"}
    hosts = [host("h1"), host("h2")]
    s = snap(hosts, [vm("w1", "h1", 1.0, labels=group), vm("w2", "h2", 1.0, labels=group)])
    assert not check_drain(s, policy(), "h1", 0.0).fits
    s3 = snap([*hosts, host("h3")], [vm("w1", "h1", 1.0, labels=group),
                                      vm("w2", "h2", 1.0, labels=group)])
    report = check_drain(s3, policy(), "h1", 0.0)
    assert report.fits and report.moves[0].dst == "h3"


def test_drain_ignores_the_move_budget() -> None:
    s = snap(HOSTS, [vm(f"v{i}", "h1", 0.2, mem=512) for i in range(6)])
    report = check_drain(s, policy("[gates]\nmax_moves_per_round = 1\n"), "h1", 0.0)
    assert report.fits and len(report.moves) == 6


def test_room_split_over_hosts_is_named_on_the_roomiest_host() -> None:
    """4,192 MiB free in total, but no single host can take the 3,000 MiB VM: the shortfall
    is what the roomiest host lacks, and the VM's own host is not counted as "not on"."""
    hosts = [host("h1", mem=4096), host("h2", mem=4096), host("h3", mem=4096)]
    s = snap(hosts, [vm("big", "h2", 0.5, mem=3000), vm("f1", "h1", 0.5, mem=2000),
                     vm("f3", "h3", 0.5, mem=2000)])
    report = check_drain(s, policy(), "h2", 0.0)
    assert not report.fits
    assert report.mem_short_mib == 904.0
    text = report.summary()
    assert text.startswith("the drain of h2 does not fit (0.9 GiB short): big (3000 MiB) ")
    assert text.count("does not fit") == 1 and "host not on" not in text
    assert "memory full (2)" in text
