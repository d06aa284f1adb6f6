"""Several drivers as one: e.g. wake with Wake-on-LAN, power off over ssh or IPMI, and read
the state from whichever can (a BMC, or a probe of the hypervisor)."""

from __future__ import annotations

from ulm.drivers.base import Power, PowerState


class CombinedPower:
    def __init__(self, *, on: Power, off: Power, state: Power) -> None:
        self.on = on
        self.off = off
        self.status = state  # not `self.state`: that is the protocol's method

    def __repr__(self) -> str:
        return f"CombinedPower(on={self.on!r}, off={self.off!r}, state={self.status!r})"

    def power_on(self) -> None:
        self.on.power_on()

    def power_off(self) -> None:
        self.off.power_off()

    def state(self) -> PowerState:
        return self.status.state()

    def reading_w(self) -> float | None:
        """The state driver's power meter, if it has one (a BMC does; WoL and ssh do not)."""
        meter = getattr(self.status, "reading_w", None)
        return meter() if meter is not None else None
