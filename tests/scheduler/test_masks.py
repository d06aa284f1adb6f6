"""The per-(VM, host) masked filters: label rules, CPU compatibility, destination back-off.

Hand-computed cases, run through the scheduler itself (`schedule`: relief of a hot host).
h0 is overloaded by `web` (6 of 8 CPUs, with 3 more it may not move); h1..h3 are empty and
equal, so first-fit takes the lowest-numbered host that passes every filter.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.builders import host, policy, snap, vm
from ulm.model import VM, Host
from ulm.scheduler import filters, masks
from ulm.scheduler.core import schedule
from ulm.scheduler.state import State

HOT = "[overload]\nthreshold = 0.8\nsustain = 1\nwindow = 1\n"
AVX = frozenset({"sse4.2", "avx2"})


def rule(kind: str, hosts: str, vms: str = 'app = "web"', weight: float = 1.0) -> str:
    return (f"[[constraints.host_rules]]\nvms = {{ {vms} }}\nhosts = {{ {hosts} }}\n"
            f"kind = \"{kind}\"\nweight = {weight}\n")


def cluster(web_cpu: frozenset[str] = frozenset(), backoff: dict[str, float] | None = None,
            h1_cpu: frozenset[str] = frozenset()) -> tuple[list[Host], list[VM]]:
    hosts = [host("h0"), host("h1", rack="a"), host("h2", rack="b"),
             host("h3", rack="a", disk="ssd")]
    hosts[1] = dataclasses.replace(hosts[1], cpu_model="Westmere", cpu_features=h1_cpu)
    hosts[2] = dataclasses.replace(hosts[2], cpu_model="Skylake", cpu_features=AVX)
    web = dataclasses.replace(vm("web", "h0", 6.0, size=8, labels={"app": "web"}),
                              cpu_features=web_cpu, dest_backoff=backoff or {})
    return hosts, [web, vm("rest", "h0", 3.0, migratable=False)]


CASES = [
    # (policy rules, cluster arguments, where web goes, the masked rejections of its row)
    ("", {}, "h1", {}),
    (rule("must", 'rack = "b"'), {}, "h2", {"label rule: must run on rack=b": 2}),
    (rule("must-not", 'rack = "a"'), {}, "h2", {"label rule: must not run on rack=a": 2}),
    (rule("must", 'rack = "c"'), {}, None, {"label rule: must run on rack=c": 3}),
    (rule("must", 'rack = "b"', vms='app = "db"'), {}, "h1", {}),  # selects no VM here
    (rule("should", 'disk = "ssd"'), {}, "h3", {}),  # a preference, not a filter
    (rule("should", 'rack = "b"', weight=1) + rule("should", 'disk = "ssd"', weight=3), {},
     "h3", {}),  # h3 misses 1/4 of the weight, h2 3/4
    (rule("must", 'rack = "a"') + rule("should", 'rack = "b"'), {}, "h1",
     {"label rule: must run on rack=a": 1}),  # must wins over should
    # CPU: h1 (Westmere) lacks avx2; h2 has it; h3 reports no CPU (no check)
    ("", {"web_cpu": AVX, "h1_cpu": frozenset({"sse4.2"})}, "h2",
     {"CPU model Westmere lacks feature avx2": 1}),
    ("", {"web_cpu": frozenset({"sse4.2"}), "h1_cpu": frozenset({"sse4.2"})}, "h1", {}),
    # back-off: h1 failed web 300 s ago... it is barred for 300 s more; an expired one is not
    ("", {"backoff": {"h1": 300.0}}, "h2",
     {"destination backing off after a failed move (300 s left)": 1}),
    ("", {"backoff": {"h1": -1.0}}, "h1", {}),
    # every mask at once: a host is counted under the first (the table's order)
    (rule("must-not", 'rack = "b"'), {"backoff": {"h1": 60.0, "h2": 60.0}}, "h3",
     {"label rule: must not run on rack=b": 1,
      "destination backing off after a failed move (60 s left)": 1}),
]


@pytest.mark.parametrize(("rules", "args", "dest", "masked"), CASES)
def test_masked_filters_decide_as_computed_by_hand(rules: str, args: dict[str, object],
                                                   dest: str | None,
                                                   masked: dict[str, int]) -> None:
    hosts, vms = cluster(**args)  # type: ignore[arg-type]
    plan = schedule(snap(hosts, vms), policy(HOT + rules), 0.0)
    assert [(m.vm, m.dst) for m in plan.moves] == ([("web", dest)] if dest else [])
    row = next(d for d in plan.decisions if d.vm == "web")
    plain = {"source or excluded", "CPU full", "memory full", "would overload"}
    assert {k: v for k, v in row.rejections.items() if k not in plain} == masked


def test_without_rules_there_are_no_classes() -> None:
    hosts, vms = cluster()
    st = State.of(snap(hosts, vms), policy(HOT), 0.0)
    assert st.masks.vm_class.size == 0 and st.masks.deny.size == 0


def test_vms_with_the_same_rules_share_one_mask_row() -> None:
    hosts = [host(f"h{i}", rack="ab"[i % 2]) for i in range(6)]
    vms = [vm(f"v{i}", "h0", 0.1, labels={"app": "web" if i % 3 else "db"}) for i in range(30)]
    m = masks.build(snap(hosts, vms), policy(rule("must", 'rack = "a"')), 0.0)
    assert m.deny.shape == (2, 6)  # web (the rule) and db (none), not 30 rows
    r, o = filters.RULE, filters.PASS
    assert m.deny[m.vm_class[1]].tolist() == [o, r, o, r, o, r]  # rack b is denied
