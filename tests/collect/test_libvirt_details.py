"""VM labels (domain metadata) and CPU (host capabilities, domain `<cpu>`) as the libvirt
collector reads them: real libvirt client library against libvirt's own test driver."""

from __future__ import annotations

import time

import libvirt

from ulm.collect.domain_xml import NS, domain_labels
from ulm.collect.libvirt_source import LibvirtSource
from ulm.drivers.libvirt import LibvirtHypervisor


def _label(dom: libvirt.virDomain, pairs: dict[str, str]) -> None:
    body = "".join(f'<label name="{k}">{v}</label>' for k, v in pairs.items())
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, f"<labels>{body}</labels>", "ulm", NS,
                    libvirt.VIR_DOMAIN_AFFECT_LIVE)


def test_labels_and_cpu_reach_the_readings_and_are_refreshed_every_n_rounds() -> None:
    hv = LibvirtHypervisor({"h1": "test:///default"})
    src = LibvirtSource(hv.conn, ["h1"], time.monotonic, details_every=3)
    try:
        dom = hv.conn("h1").lookupByName("test")
        _label(dom, {"ulm.priority": "low", "tier": "web"})
        col = src.collect(time.time())
        (vm,) = col.vms
        assert vm.labels == {"ulm.priority": "low", "tier": "web"}
        assert vm.cpu_features == frozenset()  # the test domain requires none
        (host,) = col.hosts
        assert host.cpu_features is not None and host.cpu_model is not None
        _label(dom, {"tier": "db"})
        # cached for details_every rounds: rounds 2 and 3 still say the old labels
        assert [src.collect(time.time()).vms[0].labels for _ in range(2)] == [
            {"ulm.priority": "low", "tier": "web"}] * 2
        assert src.collect(time.time()).vms[0].labels == {"tier": "db"}
    finally:
        src.close()


def test_bad_labels_are_dropped_and_other_namespaces_ignored() -> None:
    xml = (f'<domain><metadata><x:labels xmlns:x="https://other.example/1">'
           f'<label name="a">1</label></x:labels>'
           f'<ulm:labels xmlns:ulm="{NS}"><ulm:label name="ok">yes</ulm:label>'
           f'<label name="bad key">v</label><label name="k">no spaces</label>'
           f'<label name="plain">1</label></ulm:labels></metadata></domain>')
    assert domain_labels(xml) == {"ok": "yes", "plain": "1"}
    assert domain_labels("<domain/>") == {}


def test_an_expanded_cpu_lists_the_model_features_but_not_the_disabled_ones() -> None:
    from ulm.collect.cpu import expanded_features, host_cpu_element
    caps = ("<capabilities><host><cpu><model>Broadwell</model><feature name='vmx'/></cpu>"
            "</host></capabilities>")
    assert host_cpu_element(caps) is not None and "Broadwell" in str(host_cpu_element(caps))
    assert host_cpu_element("<capabilities><host/></capabilities>") is None
    assert expanded_features("<cpu><model>Broadwell</model><feature policy='require' "
                             "name='lahf_lm'/><feature policy='disable' name='rtm'/>"
                             "<feature name='vmx'/></cpu>") == {"lahf_lm", "vmx"}
