"""`[placement] strategy = "memory-fit"`: best fit on memory, ties by PABFD's power increase;
hand-computed cases through `schedule` (an overloaded host hands one VM over; the test
curve is linear, so PABFD sees the same increase on h2 and h3)."""

from __future__ import annotations

import pytest

from tests.builders import host, policy, snap, vm
from ulm.model import Move, Plan
from ulm.scheduler import schedule

RULES = """
[overload]
threshold = 0.75
sustain = 1
window = 1
[selection]
rule = "largest"
[placement]
strategy = "{strategy}"
"""


def dests(plan: Plan) -> list[tuple[str, str]]:
    return [(a.vm, a.dst) for a in plan.actions if isinstance(a, Move)]


def cluster(h2_mem: float, h3_mem: float, h3_load: float = 1.0) -> Plan:
    """h1 at 6.5/8 (> 75 %): "big" (4.5, 2048 MiB) leaves. h2 and h3 (8 CPUs, 16 GiB) hold one
    VM each, of `h2_mem` / `h3_mem` MiB; h2 at 1.0 CPU, h3 at `h3_load`."""
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [vm("big", "h1", 4.5, size=6.0), vm("small", "h1", 2.0),
           vm("a", "h2", 1.0, mem=h2_mem), vm("b", "h3", h3_load, mem=h3_mem)]
    return snap(hosts, vms)


@pytest.mark.parametrize(("h2_mem", "h3_mem", "expected"), [
    (12288.0, 4096.0, "h2"),  # 16384 - 12288 - 2048 = 2048 free on h2, 10240 on h3
    (4096.0, 12288.0, "h3"),
    (14336.0, 4096.0, "h2"),  # exactly full after the move: still fits, the best fit
    (14337.0, 4096.0, "h3"),  # one MiB too many: h2 does not fit
])
def test_memory_fit_takes_the_host_left_with_the_least_free_memory(
        h2_mem: float, h3_mem: float, expected: str) -> None:
    plan = schedule(cluster(h2_mem, h3_mem), policy(RULES.format(strategy="memory-fit")), 0.0)
    assert dests(plan) == [("big", expected)]


def test_pabfd_ignores_memory() -> None:
    # the same cluster as the first case: PABFD's increase is the same on h2 and h3 (linear
    # curve, same load), so the lowest index wins whatever the memory
    plan = schedule(cluster(4096.0, 12288.0), policy(RULES.format(strategy="pabfd")), 0.0)
    assert dests(plan) == [("big", "h2")]
