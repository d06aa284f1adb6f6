"""Wake-on-LAN: the magic packet (6 x 0xFF + 16 x the MAC) as a UDP broadcast. It can only
wake a host; its state comes from a probe (does the hypervisor answer?)."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from ulm.drivers.base import PowerState
from ulm.errors import ConfigError

_MAC = re.compile(r"^([0-9a-f]{2})([:-][0-9a-f]{2}){5}$", re.I)


def magic_packet(mac: str) -> bytes:
    if not _MAC.match(mac):
        raise ConfigError(f"{mac!r} is not a MAC address like 52:54:00:12:34:56")
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    return b"\xff" * 6 + raw * 16


class WolPower:
    def __init__(self, mac: str, broadcast: str = "255.255.255.255", port: int = 9,
                 interface: str | None = None,
                 probe: Callable[[], bool] | None = None, repeat: int = 3) -> None:
        self.packet = magic_packet(mac)
        self.mac = mac
        self.broadcast = broadcast
        self.port = port
        self.interface = interface
        self.probe = probe
        self.repeat = repeat  # UDP may drop one; listeners ignore repeats

    def power_on(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if self.interface:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                             self.interface.encode())
            for _ in range(self.repeat):
                s.sendto(self.packet, (self.broadcast, self.port))

    def power_off(self) -> None:
        raise NotImplementedError("Wake-on-LAN can only wake a host")

    def state(self) -> PowerState:
        if self.probe is None:
            return PowerState.UNKNOWN
        return PowerState.ON if self.probe() else PowerState.OFF
