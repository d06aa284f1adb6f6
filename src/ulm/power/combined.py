"""Several drivers as one: e.g. wake with Wake-on-LAN, power off and read state over IPMI."""

from __future__ import annotations

from dataclasses import dataclass

from ulm.drivers.base import Power, PowerState


@dataclass
class CombinedPower:
    on: Power
    off: Power
    status: Power

    def power_on(self) -> None:
        self.on.power_on()

    def power_off(self) -> None:
        self.off.power_off()

    def state(self) -> PowerState:
        return self.status.state()
