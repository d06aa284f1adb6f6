"""CPU model and features from libvirt XML: the host's (capabilities) and what a domain's CPU
definition requires, for the scheduler's CPU compatibility filter (`scheduler.masks`).

Feature-set inclusion: a VM runs on a host whose CPU has every feature the VM's definition
requires: those its named model implies (`<model>Haswell</model>`) and those it lists
(`<feature policy='require'|'force'>`), less those it disables. Expanding a model into its
features is libvirt's (its CPU map, `baselineCPU(..., EXPAND_FEATURES)`): the libvirt
collector asks for it once per model and connection (`ulm.collect.libvirt_source`); this
module only reads and writes the XML, so the scheduler gets the full feature set.
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


def model_element(domain_xml: str) -> str | None:
    """A domain's named CPU model as a `<cpu>` libvirt's baseline expands (its arch from
    `<os><type arch>`), or None: no `<cpu>`, no model, or a mode (host-model,
    host-passthrough) that takes the host's CPU rather than a named one."""
    root = ET.fromstring(domain_xml)
    cpu = root.find("cpu")
    model = "" if cpu is None else (cpu.findtext("model") or "").strip()
    if cpu is None or not model or cpu.get("mode", "custom") != "custom":
        return None
    el = ET.Element("cpu")
    arch = root.find("os/type")
    if arch is not None and arch.get("arch"):
        ET.SubElement(el, "arch").text = arch.get("arch")
    ET.SubElement(el, "model").text = model
    return ET.tostring(el, encoding="unicode")


def required_with_model(domain_xml: str, model_features: frozenset[str]) -> frozenset[str]:
    """What the domain requires given its model's features (`expanded_features` of the
    baseline of `model_element`): those plus the listed ones, less the disabled ones."""
    cpu = ET.fromstring(domain_xml).find("cpu")
    if cpu is None:
        return frozenset()
    disabled = {f.get("name", "") for f in cpu.findall("feature")
                if f.get("policy") in ("disable", "forbid")}
    return (model_features | domain_cpu(domain_xml)[1]) - disabled


def domain_cpu(domain_xml: str) -> tuple[str, frozenset[str]]:
    """(model, required features) of a domain's `<cpu>`; ("", {}) without a definition."""
    cpu = ET.fromstring(domain_xml).find("cpu")
    if cpu is None:
        return "", frozenset()
    model = (cpu.findtext("model") or "").strip()
    need = {f.get("name", "") for f in cpu.findall("feature")
            if f.get("policy", "require") in _REQUIRED}
    return model, frozenset(n for n in need if n)
