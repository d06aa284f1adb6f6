"""The bogus-metrics guard on hand-computed figures: what is beyond physics, and what is not."""

from __future__ import annotations

import pytest

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.collect.guard import BogusKind, Limits, Size, check, withheld

T = 1000.0


def host(cores: int = 8, mem: float = 16384.0, cpu: float | None = 0.5,
         used: float | None = 4096.0, source: str = "libvirt") -> HostReading:
    return HostReading("h1", T, True, "", cores, mem, cpu, used, None, source)


def vm(cpu: float | None, vcpus: int = 2) -> VMReading:
    return VMReading("web", "h1", T, vcpus, 2048.0, cpu)


PREV = {("libvirt", "h1"): Size(8, 16384.0)}


@pytest.mark.parametrize(("reading", "kind", "text"), [
    (host(cores=0), BogusKind.NO_CPUS, "reported 0 CPUs"),
    (host(mem=0.0), BogusKind.NO_MEMORY, "reported 0 MiB of memory"),
    # 8 cores, 1.25 busy = 10 cores' worth: above the 110 % limit
    (host(cpu=1.25), BogusKind.CPU_OVER_CORES, "reported CPU 125% of its cores (limit 110%)"),
    # 16384 MiB x 1.05 = 17203 MiB allowed; 20000 is more than it has
    (host(used=20000.0), BogusKind.MEM_OVER_SIZE,
     "reported 20000 MiB used of 16384 MiB (more than it has)"),
    # 8 -> 32 cores is a factor 4 > 2
    (host(cores=32), BogusKind.CAPACITY_JUMP,
     "reported cores changing by a factor of 4.0 in one round"),
    # 16384 -> 4096 MiB is a factor 4 > 2
    (host(mem=4096.0, used=1000.0), BogusKind.CAPACITY_JUMP,
     "reported memory changing by a factor of 4.0 in one round"),
])
def test_figures_beyond_physics_quarantine_the_host(reading: HostReading, kind: BogusKind,
                                                    text: str) -> None:
    verdict = check(Collection(T, (reading,)), PREV)
    assert verdict.bogus["h1"].kind is kind
    assert str(verdict.bogus["h1"]) == text


def test_a_vm_busier_than_its_vcpus_quarantines_its_host() -> None:
    # 2 vCPUs x 1.10 = 2.2 cores at most; 3.5 cannot be
    verdict = check(Collection(T, (host(),), (vm(3.5),)), PREV)
    assert verdict.bogus["h1"].kind is BogusKind.VM_CPU_OVER_VCPUS
    assert str(verdict.bogus["h1"]) == "reported VM web busy on 3.50 cores with 2 vCPUs"


@pytest.mark.parametrize("reading", [
    host(cpu=1.0),  # legitimately busy: every core at 100 %
    host(cpu=1.08),  # rounding between two counter reads, within the 10 % tolerance
    host(used=16384.0),  # every MiB in use
    host(cores=16, mem=32768.0),  # doubled: exactly the factor allowed, not beyond it
    host(cpu=None, used=None),  # no figures at all: nothing to disbelieve
    host(cores=0, mem=0.0, source="munin"),  # munin knows no size: 0 means "not given"
    HostReading("h1", T, False, "connection refused"),  # silent: reported elsewhere
])
def test_sane_figures_are_believed(reading: HostReading) -> None:
    verdict = check(Collection(T, (reading,), (vm(2.0), vm(None))), PREV)
    assert dict(verdict.bogus) == {}


def test_a_first_sight_has_nothing_to_jump_from_and_a_jump_is_believed_next_round() -> None:
    first = check(Collection(T, (host(cores=64),)), {})
    assert dict(first.bogus) == {}
    assert first.sizes[("libvirt", "h1")] == Size(64, 16384.0)
    jump = check(Collection(T, (host(cores=8),)), first.sizes)
    assert jump.bogus["h1"].kind is BogusKind.CAPACITY_JUMP
    # the new size stays: a host really rebuilt with other hardware is believed one round on
    assert dict(check(Collection(T, (host(cores=8),)), jump.sizes).bogus) == {}
    # a zero never becomes the size to compare with: 8 -> 0 -> 8 is no jump
    zero = check(Collection(T, (host(cores=0),)), jump.sizes)
    assert zero.sizes == jump.sizes


def test_tolerances_are_the_limits_given() -> None:
    strict = Limits(cpu_tolerance=0.0, mem_tolerance=0.0, capacity_jump=1.5)
    assert check(Collection(T, (host(cpu=1.01),)), PREV, strict).bogus["h1"].kind \
        is BogusKind.CPU_OVER_CORES
    assert check(Collection(T, (host(cores=16, mem=32768.0),)), PREV, strict).bogus
    assert not check(Collection(T, (host(cpu=1.01),)), PREV).bogus


def test_withheld_figures_never_reach_the_store() -> None:
    col = Collection(T, (host(cores=0, cpu=0.0, used=0.0),), (vm(1.0),))
    out = withheld(col, check(col, PREV), PREV)
    (h,), (v,) = out.hosts, out.vms
    assert (h.cores, h.mem_total_mib, h.cpu, h.mem_used_mib) == (8, 16384.0, None, None)
    assert h.ok and v.cpu is None and v.host == "h1"  # listed still: not gone


@pytest.mark.parametrize(("bad", "named"), [({"capacity_jump": 1.0}, "capacity_jump"),
                                            ({"cpu_tolerance": -0.1}, "cpu_tolerance"),
                                            ({"cpu_tolerence": 0.1}, "cpu_tolerence")])
def test_guard_settings_are_validated(bad: dict[str, float], named: str) -> None:
    from pydantic import ValidationError

    from ulm.config import CollectConfig
    assert CollectConfig().guard.capacity_jump == 2.0 and CollectConfig().guard.enabled
    with pytest.raises(ValidationError, match=named):
        CollectConfig.model_validate({"guard": bad})
