"""From `[hosts.power]` in the config to a `Power` driver per host."""

from __future__ import annotations

import functools
from collections.abc import Callable

from ulm.config import Config, PowerConfig
from ulm.drivers.base import Power
from ulm.power.combined import CombinedPower
from ulm.power.ipmi import IpmiPower
from ulm.power.probe import Probe
from ulm.power.redfish import RedfishPower
from ulm.power.ssh import SshPower
from ulm.power.wol import WolPower


def build_power(cfg: Config, reachable: Callable[[str], bool]) -> dict[str, Power]:
    """host -> its driver, for the hosts that have `[hosts.power]`; `reachable(host)` is the
    probe of the drivers that cannot read power state (does its hypervisor answer?)."""
    return {h.name: driver(h.power, functools.partial(reachable, h.name), h.name)
            for h in cfg.hosts if h.power is not None}


def driver(p: PowerConfig, probe: Probe, host: str = "") -> Power:
    # The password is read when a session is opened (p.secret), never kept in the config's
    # repr, and a rotated password file is picked up on the next reconnect.
    if p.driver == "redfish":
        return RedfishPower(p.address, p.username, p.secret, p.system, p.verify_tls,
                            p.timeout_s, soft=p.soft_off, host=host)
    if p.driver == "wol":
        return _wol(p, probe)
    if "ssh" in p.driver:
        ssh = SshPower(p.address, p.username or "root", p.key_file, p.ssh_port, p.command,
                       p.known_hosts, probe, p.timeout_s, p.host_key_checking)
        return ssh if p.driver == "ssh" else CombinedPower(on=_wol(p, probe), off=ssh,
                                                           state=ssh)
    ipmi = IpmiPower(p.address, p.username, p.secret, p.port, p.timeout_s, soft=p.soft_off,
                     host=host, power_sensor=p.power_sensor)
    return ipmi if p.driver == "ipmi" else CombinedPower(on=_wol(p, probe), off=ipmi,
                                                         state=ipmi)


def _wol(p: PowerConfig, probe: Probe) -> WolPower:
    return WolPower(p.mac, p.broadcast, interface=p.interface or None, probe=probe)
