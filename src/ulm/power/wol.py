"""Wake-on-LAN: the magic packet (6 x 0xFF + 16 x the MAC) as a UDP broadcast. It can only
wake a host; its state comes from a probe (does the hypervisor answer?)."""

from __future__ import annotations

import re
import socket

from ulm.drivers.base import PowerState
from ulm.errors import ConfigError
from ulm.power.errors import PowerError
from ulm.power.probe import Probe, probed

_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.I)


def parse_mac(mac: str) -> bytes:
    """The 6 bytes of `52:54:00:12:34:56` (or with dashes); anything else is a ConfigError."""
    if not _MAC.match(mac):
        raise ConfigError(f"{mac!r} is not a MAC address like 52:54:00:12:34:56")
    return bytes.fromhex(mac.replace(":", "").replace("-", ""))


def magic_packet(mac: str) -> bytes:
    return b"\xff" * 6 + parse_mac(mac) * 16


class WolPower:
    def __init__(self, mac: str, broadcast: str = "255.255.255.255", port: int = 9,
                 interface: str | None = None, probe: Probe | None = None,
                 repeat: int = 3) -> None:
        self.packet = magic_packet(mac)  # checked now: a typo fails at start, not at 3 a.m.
        self.mac = mac
        self.broadcast = broadcast
        self.port = port
        self.interface = interface  # send out of this NIC (SO_BINDTODEVICE), whatever the route
        self.probe = probe
        self.repeat = repeat  # UDP may drop one; listeners ignore repeats

    def __repr__(self) -> str:
        via = f" via {self.interface}" if self.interface else ""
        return f"WolPower({self.mac} -> {self.broadcast}:{self.port}{via})"

    def power_on(self) -> None:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                if self.interface:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                                 self.interface.encode())
                for _ in range(self.repeat):
                    s.sendto(self.packet, (self.broadcast, self.port))
        except OSError as exc:  # no such interface, no route, not allowed to bind ...
            raise PowerError(f"Wake-on-LAN for {self.mac} to {self.broadcast}:{self.port}"
                             f"{' on ' + self.interface if self.interface else ''}: "
                             f"{exc.strerror or exc}") from None

    def power_off(self) -> None:
        raise NotImplementedError("Wake-on-LAN can only wake a host")

    def state(self) -> PowerState:
        return probed(self.probe)
