"""Property: whatever the cluster, a plan never moves a VM to a host its must / must-not label
rules, its CPU's features or a destination back-off forbid (relief, balance, consolidation)."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import host, policy, snap, vm
from ulm.model import VM, Host
from ulm.scheduler.core import schedule

FEATURES = ("sse4.2", "avx", "avx2")
NOW = 1000.0


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[Host], list[VM], str]:
    n_h = draw(st.integers(2, 6))
    hosts = [dataclasses.replace(
        host(f"h{i}", rack=draw(st.sampled_from("ab"))),
        cpu_features=frozenset(draw(st.sets(st.sampled_from(FEATURES)))))
        for i in range(n_h)]
    vms = []
    for j in range(draw(st.integers(1, 10))):
        on = draw(st.integers(0, n_h - 1))
        backoff = {f"h{h}": NOW + draw(st.sampled_from([-5.0, 60.0]))
                   for h in draw(st.sets(st.integers(0, n_h - 1), max_size=2))}
        vms.append(dataclasses.replace(
            vm(f"v{j}", f"h{on}", draw(st.floats(0.1, 5.0)),
               labels={"app": draw(st.sampled_from(["web", "db"]))}),
            cpu_features=frozenset(draw(st.sets(st.sampled_from(FEATURES), max_size=2))),
            dest_backoff=backoff))
    rules = ""
    for _ in range(draw(st.integers(0, 3))):
        app = draw(st.sampled_from(["web", "db"]))
        rules += (f"[[constraints.host_rules]]\nvms = {{ app = \"{app}\" }}\n"
                  f"hosts = {{ rack = \"{draw(st.sampled_from('ab'))}\" }}\n"
                  f"kind = \"{draw(st.sampled_from(['must', 'must-not', 'should']))}\"\n")
    return hosts, vms, rules


def forbidden(h: Host, v: VM, rules: list[dict[str, object]]) -> bool:
    """The rules, read from the policy text's meaning, for one VM and one host."""
    for r in rules:
        if v.labels.get("app") != r["app"]:
            continue
        on = h.labels.get("rack") == r["rack"]
        if (r["kind"] == "must" and not on) or (r["kind"] == "must-not" and on):
            return True
    if h.cpu_features and not v.cpu_features <= h.cpu_features:
        return True
    return v.dest_backoff.get(h.name, -1.0) > NOW


MODES = ["[overload]\nthreshold = 0.6\nsustain = 1\nwindow = 1\n",
         "[consolidation]\nenabled = true\nunderload_threshold = 0.5\npower_off = false\n",
         "[balance]\nenabled = true\nspread = 0.05\n[overload]\ndetector = \"none\"\n"]


@settings(max_examples=150, deadline=None)
@given(clusters(), st.sampled_from(MODES))
def test_no_plan_breaks_a_mask(cluster: tuple[list[Host], list[VM], str], mode: str) -> None:
    hosts, vms, rules_text = cluster
    pol = policy(mode + rules_text)
    rules = [{"app": r.vms["app"], "rack": r.hosts["rack"], "kind": r.kind}
             for r in pol.constraints.host_rules]
    by_host, by_vm = {h.name: h for h in hosts}, {v.name: v for v in vms}
    plan = schedule(snap(hosts, vms, NOW), pol, NOW)
    for m in plan.moves:
        assert not forbidden(by_host[m.dst], by_vm[m.vm], rules), (m, rules_text)
