"""Power state for drivers that cannot read it (Wake-on-LAN, ssh): ask the host itself."""

from __future__ import annotations

from collections.abc import Callable

from ulm.drivers.base import PowerState

#: True when the host answers (e.g. its libvirtd accepts a connection).
Probe = Callable[[], bool]


def probed(probe: Probe | None) -> PowerState:
    """ON if the host answers, OFF if not; UNKNOWN without a probe. A host that does not
    answer may also be up with a dead hypervisor: the executor only uses OFF after it powered
    the host off itself, and ON after it woke it."""
    if probe is None:
        return PowerState.UNKNOWN
    return PowerState.ON if probe() else PowerState.OFF
