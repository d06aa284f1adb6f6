"""A guest's named CPU model expanded into its features by libvirt (`baselineCPU`, its CPU
map) in the collector, so the scheduler compares full feature sets: real libvirt client
library against libvirt's own test driver, whose CPU map is libvirt's."""

from __future__ import annotations

import dataclasses
import time

import libvirt

from tests.builders import host, policy, snap, vm
from ulm.collect.cpu import expanded_features, model_element, required_with_model
from ulm.collect.libvirt_source import LibvirtSource
from ulm.drivers.libvirt import LibvirtHypervisor
from ulm.scheduler.core import schedule

HASWELL = """<domain type='test'><name>haswell-guest</name><memory>1048576</memory>
<os><type arch='x86_64'>hvm</type></os>
<cpu mode='custom' match='exact'><model>Haswell</model>
<feature policy='disable' name='hle'/><feature policy='require' name='vmx'/>
<feature policy='optional' name='x2apic'/></cpu></domain>"""


def _model(conn: libvirt.virConnect, name: str) -> frozenset[str]:
    return expanded_features(conn.baselineCPU(
        [f"<cpu><arch>x86_64</arch><model>{name}</model></cpu>"],
        libvirt.VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES))


def test_the_model_element_names_model_and_arch_and_only_custom_modes() -> None:
    assert model_element(HASWELL) == "<cpu><arch>x86_64</arch><model>Haswell</model></cpu>"
    assert model_element("<domain><cpu mode='host-passthrough'/></domain>") is None
    assert model_element("<domain><cpu mode='host-model'><model>Haswell</model></cpu>"
                         "</domain>") is None
    assert model_element("<domain><cpu><feature name='pae'/></cpu></domain>") is None
    assert model_element("<domain/>") is None
    # listed ones added, disabled ones taken out of what the model implies
    assert required_with_model(HASWELL, frozenset({"avx2", "hle"})) == {"avx2", "vmx"}


def test_a_named_model_reaches_the_reading_expanded_and_the_scheduler_names_the_gap() -> None:
    hv = LibvirtHypervisor({"h1": "test:///default"})
    src = LibvirtSource(hv.conn, ["h1"], time.monotonic)
    try:
        conn = hv.conn("h1")
        dom = conn.defineXML(HASWELL)
        dom.create()
        haswell, sandy = _model(conn, "Haswell"), _model(conn, "SandyBridge")
        (guest,) = [v for v in src.collect(time.time()).vms
                    if v.vm == "haswell-guest"]
    finally:
        src.close()
    need = guest.cpu_features
    assert need is not None
    # the model's own features (libvirt's map), the required one, not the disabled one nor
    # the optional one beyond the model
    assert {"avx2", "fma", "movbe", "vmx"} <= need and "hle" not in need
    assert need == (haswell | {"vmx"}) - {"hle"}
    # a SandyBridge host (with vmx) lacks Haswell's additions: the VM does not go there
    missing = sorted(need - (sandy | {"vmx"}))
    assert "avx2" in missing
    hosts = [host("h0"),
             dataclasses.replace(host("h1"), cpu_model="SandyBridge",
                                 cpu_features=sandy | {"vmx"}),
             dataclasses.replace(host("h2"), cpu_model="Haswell",
                                 cpu_features=haswell | {"vmx"})]
    vms = [dataclasses.replace(vm("guest", "h0", 6.0, size=8), cpu_features=need),
           vm("rest", "h0", 3.0, migratable=False)]
    plan = schedule(snap(hosts, vms), policy(
        "[overload]\nthreshold = 0.8\nsustain = 1\nwindow = 1\n"), 0.0)
    assert [(m.vm, m.dst) for m in plan.moves] == [("guest", "h2")]
    row = next(d for d in plan.decisions if d.vm == "guest")
    assert row.rejections[f"CPU model SandyBridge lacks feature {missing[0]}"] == 1
