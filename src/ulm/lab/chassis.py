"""The "firmware" behind a lab host's power: the IPMI BMC's chassis control hook and the NIC's
Wake-on-LAN listener both end here, in the host's real power switch (`hosts.power_on/off`).

    python -m ulm.lab.chassis STATE_DIR I get power | set power 0|1 | set reset 1 | ...
        (OpenIPMI `ipmi_sim`'s chassis_control protocol: print `power:1` / `power:0`)
    python -m ulm.lab.chassis STATE_DIR I wol
        (inside the host's network namespace: wait for magic packets for its eth0 MAC)
"""

from __future__ import annotations

import fcntl
import socket
import struct
import sys
import time
from pathlib import Path

from ulm.lab import hosts
from ulm.lab.paths import LabPaths

SIOCGIFHWADDR = 0x8927


def chassis(paths: LabPaths, i: int, args: list[str]) -> int:
    log = paths.host(i) / "power.log"
    with log.open("a") as f:
        f.write(f"{time.strftime('%T')} ipmi {' '.join(args)}\n")
    if args[:1] == ["get"]:
        for param in args[1:]:
            if param == "power":
                print(f"power:{1 if hosts.is_on(paths, i) else 0}")
            elif param == "boot":
                print("boot:default")
            else:
                print(f"Invalid parameter: {param}")
                return 1
        return 0
    if args[:1] == ["set"]:
        pairs = list(zip(args[1::2], args[2::2], strict=False))
        for param, value in pairs:
            if param == "power":
                if value == "1":
                    hosts.power_on(paths, i, wait=False)  # the BMC answers at once
                else:
                    hosts.power_off(paths, i)
            elif param == "reset":
                hosts.power_off(paths, i)
                hosts.power_on(paths, i, wait=False)
            elif param != "boot":
                print(f"Invalid parameter: {param}")
                return 1
        return 0
    return 0  # "check" and anything else: nothing to do


def wol(paths: LabPaths, i: int, iface: str = "eth0") -> None:
    """An AF_PACKET listener sees frames even though nothing listens on UDP port 9."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    s.bind((iface, 0))
    # the MAC by ioctl: after nsenter, /sys is still the root namespace's sysfs
    mac = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", iface.encode()[:15]))[18:24]
    magic = b"\xff" * 6 + mac * 16
    log = paths.host(i) / "power.log"
    last = 0.0
    while True:
        frame = s.recv(65535)
        if magic not in frame[14:]:
            continue
        with log.open("a") as f:
            f.write(f"{time.strftime('%T')} wol magic packet from {frame[6:12].hex(':')}\n")
        if time.monotonic() - last > 2:  # a wake is often sent several times
            last = time.monotonic()
            hosts.power_on(paths, i, wait=False)


def main(argv: list[str]) -> int:
    paths = LabPaths(Path(argv[0]), LabPaths.default().cache)
    i = int(argv[1])
    if argv[2:3] == ["wol"]:
        wol(paths, i)
        return 0
    return chassis(paths, i, argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
