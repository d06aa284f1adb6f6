"""From `[hosts.power]` in the config to a `Power` driver per host."""

from __future__ import annotations

import functools
from collections.abc import Callable

from ulm.config import Config, PowerConfig
from ulm.drivers.base import Power
from ulm.power.combined import CombinedPower
from ulm.power.ipmi import IpmiPower
from ulm.power.redfish import RedfishPower
from ulm.power.ssh import SshPower
from ulm.power.wol import WolPower


def build_power(cfg: Config, reachable: Callable[[str], bool]) -> dict[str, Power]:
    out: dict[str, Power] = {}
    for h in cfg.hosts:
        if h.power is not None:
            out[h.name] = driver(h.power, functools.partial(reachable, h.name))
    return out


def driver(p: PowerConfig, probe: Callable[[], bool]) -> Power:
    wol = (WolPower(p.mac, p.broadcast, interface=p.interface or None, probe=probe)
           if "wol" in p.driver else None)
    if p.driver == "wol":
        assert wol is not None
        return wol
    if "ssh" in p.driver:
        ssh = SshPower(p.address, p.username or "root", p.key_file, p.ssh_port, p.command,
                       p.known_hosts, probe, p.timeout_s)
        if wol is None:
            return ssh
        return CombinedPower(on=wol, off=ssh, status=ssh)
    if p.driver == "redfish":
        return RedfishPower(p.address, p.username, p.secret(), p.system, p.verify_tls,
                            p.timeout_s)
    ipmi = IpmiPower(p.address, p.username, p.secret(), p.port, p.timeout_s)
    if wol is not None:
        return CombinedPower(on=wol, off=ipmi, status=ipmi)
    return ipmi
