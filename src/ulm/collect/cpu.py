"""CPU model and features from libvirt XML: the host's (capabilities) and what a domain's CPU
definition requires, for the scheduler's CPU compatibility filter (`scheduler.masks`).

Feature-set inclusion: a VM runs on a host whose CPU has every feature the VM's definition
requires (`<feature policy='require'|'force'>`). The VM's named model is not expanded into its
features here; libvirt's `compareHypervisorCPU` would, per host and VM, which is I/O the
shell may add later. The libvirt collector reads both (`ulm.collect.libvirt_source`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # libvirt's own XML, from a connection ULM opened

_REQUIRED = {"require", "force"}


def host_cpu(capabilities_xml: str) -> tuple[str, frozenset[str]]:
    """(model, features) of `virConnectGetCapabilities`' `<host><cpu>`; ("", {}) if absent."""
    cpu = ET.fromstring(capabilities_xml).find("host/cpu")
    if cpu is None:
        return "", frozenset()
    model = (cpu.findtext("model") or "").strip()
    named = {f.get("name", "") for f in cpu.findall("feature")}
    legacy = {child.tag for block in cpu.findall("features") for child in block}
    return model, frozenset(n for n in named | legacy if n)


def host_cpu_element(capabilities_xml: str) -> str | None:
    """The `<host><cpu>` element as XML, for `virConnectBaselineCPU` (None if absent)."""
    cpu = ET.fromstring(capabilities_xml).find("host/cpu")
    return None if cpu is None else ET.tostring(cpu, encoding="unicode")


def expanded_features(cpu_xml: str) -> frozenset[str]:
    """Features of a CPU definition with its model expanded (`baselineCPU(...,
    EXPAND_FEATURES)`): the capabilities list only those beyond the named model, and a guest's
    live definition may require one the model implies (`lahf_lm` on Broadwell)."""
    cpu = ET.fromstring(cpu_xml)
    return frozenset(n for f in cpu.iter("feature")
                     if f.get("policy", "require") != "disable" and (n := f.get("name", "")))


def domain_cpu(domain_xml: str) -> tuple[str, frozenset[str]]:
    """(model, required features) of a domain's `<cpu>`; ("", {}) without a definition."""
    cpu = ET.fromstring(domain_xml).find("cpu")
    if cpu is None:
        return "", frozenset()
    model = (cpu.findtext("model") or "").strip()
    need = {f.get("name", "") for f in cpu.findall("feature")
            if f.get("policy", "require") in _REQUIRED}
    return model, frozenset(n for n in need if n)
