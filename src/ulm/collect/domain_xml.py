"""A VM's labels and required CPU features from its libvirt domain XML.

Labels live in the domain's `<metadata>`, in ULM's own namespace (docs/policy.md, "VM labels
from libvirt"), so that anything that defines guests (virsh, an orchestrator) can set them and
they travel with the domain when it migrates:

    <metadata>
      <ulm:labels xmlns:ulm="https://ulm.example/labels/1">
        <ulm:label name="ulm.priority">low</ulm:label>
      </ulm:labels>
    </metadata>

A label whose key or value no label can have (the policy's own rule for selectors) is dropped,
not guessed at: the guest's definition is input ULM does not control.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # libvirt's own XML, from a connection ULM opened

from ulm.collect.cpu import domain_cpu
from ulm.policy import _LABEL_KEY, _LABEL_VALUE

NS = "https://ulm.example/labels/1"
MAX_LABELS = 64  # a definition with more is not one ULM reads all of


def domain_labels(domain_xml: str) -> dict[str, str]:
    """Labels of `<metadata><ulm:labels>`; {} without them."""
    root = ET.fromstring(domain_xml).find(f"metadata/{{{NS}}}labels")
    if root is None:
        return {}
    out: dict[str, str] = {}
    # libvirt keeps the prefix on the root element only when virsh set it; children may or
    # may not be in the namespace: the local name decides
    for el in root.iter():
        if el is root or el.tag.rsplit("}", 1)[-1] != "label":
            continue
        key, value = el.get("name", ""), (el.text or "").strip()
        if _LABEL_KEY.fullmatch(key) and _LABEL_VALUE.fullmatch(value):
            out[key] = value
        if len(out) >= MAX_LABELS:
            break
    return out


def domain_details(domain_xml: str) -> tuple[dict[str, str], frozenset[str]]:
    """(labels, required CPU features) of one domain definition."""
    return domain_labels(domain_xml), domain_cpu(domain_xml)[1]
