"""The lab's network: a bridge in a switch namespace, one namespace per host and one for the
controller, and the root namespace's safety route.

The safety route comes first: in the root namespace 10.77.0.0/24 would follow the default route
*off* this machine, so it is made locally unreachable before any lab address exists.
"""

from __future__ import annotations

from pathlib import Path

from ulm.lab.paths import CONTROLLER, CONTROLLER_IP, REDFISH, SUBNET, SWITCH
from ulm.lab.system import run


def safety_route() -> None:
    run(["ip", "route", "replace", "unreachable", SUBNET])


def has_safety_route() -> bool:
    return "unreachable" in run(["ip", "route", "show", SUBNET], check=False)


def namespaces() -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def lab_namespaces() -> list[str]:
    return [ns for ns in namespaces() if ns in (SWITCH, CONTROLLER, REDFISH)
            or (ns.startswith(("labh", "labb")) and ns[4:].isdigit())]


def switch_up() -> None:
    safety_route()
    run(["ip", "netns", "add", SWITCH])
    run(["ip", "-n", SWITCH, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", SWITCH, "link", "set", "br0", "up"])
    run(["ip", "-n", SWITCH, "link", "set", "lo", "up"])


def attach(ns: str, address: str) -> None:
    """A namespace with `eth0` at `address`/24 on the lab bridge."""
    run(["ip", "netns", "add", ns])
    veth = f"v-{ns}"
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "link", "set", veth, "netns", SWITCH])
    run(["ip", "-n", SWITCH, "link", "set", veth, "master", "br0", "up"])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
    run(["ip", "-n", ns, "link", "set", "eth0", "up"])


def controller_up() -> None:
    attach(CONTROLLER, CONTROLLER_IP)


def mac(ns: str) -> str:
    for line in run(["ip", "-n", ns, "link", "show", "eth0"]).splitlines():
        parts = line.split()
        if parts and parts[0] == "link/ether":
            return parts[1]
    raise RuntimeError(f"no MAC address on {ns}/eth0")


def down() -> None:
    for ns in lab_namespaces():
        run(["ip", "netns", "del", ns], check=False)
    run(["ip", "route", "del", "unreachable", SUBNET], check=False)


def netns_path(ns: str) -> Path:
    return Path("/run/netns") / ns
