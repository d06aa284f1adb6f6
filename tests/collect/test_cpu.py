"""CPU model and features read from libvirt (the test driver: real libvirt XML), and the
scheduler's verdict on them."""

from __future__ import annotations

import dataclasses

import libvirt

from tests.builders import host, policy, snap, vm
from ulm.collect.cpu import domain_cpu, host_cpu
from ulm.scheduler.core import schedule

DOMAIN = """<domain type='test'><name>needs-avx2</name><memory>1048576</memory>
<os><type>hvm</type></os>
<cpu mode='custom'><model>Haswell</model><feature policy='require' name='avx2'/>
<feature policy='disable' name='hle'/><feature policy='force' name='pae'/></cpu></domain>"""


def test_host_and_domain_cpu_from_the_test_driver() -> None:
    conn = libvirt.open("test:///default")
    try:
        model, features = host_cpu(conn.getCapabilities())
        assert {"pae", "nonpae"} <= features
        dom = conn.defineXML(DOMAIN)
        assert domain_cpu(dom.XMLDesc()) == ("Haswell", frozenset({"avx2", "pae"}))
        assert domain_cpu(conn.lookupByName("test").XMLDesc()) == ("", frozenset())
    finally:
        conn.close()
    # the test host lacks avx2: a VM needing it may go to the host that has it, not there
    hosts = [host("h0"), dataclasses.replace(host("h1"), cpu_model=model or "i686",
                                             cpu_features=features),
             dataclasses.replace(host("h2"), cpu_features=features | {"avx2"})]
    vms = [dataclasses.replace(vm("web", "h0", 6.0, size=8), cpu_features=frozenset(
        {"avx2", "pae"})), vm("rest", "h0", 3.0, migratable=False)]
    plan = schedule(snap(hosts, vms), policy(
        "[overload]\nthreshold = 0.8\nsustain = 1\nwindow = 1\n"), 0.0)
    assert [(m.vm, m.dst) for m in plan.moves] == [("web", "h2")]
    row = next(d for d in plan.decisions if d.vm == "web")
    assert row.rejections[f"CPU model {model or 'i686'} lacks feature avx2"] == 1
