"""A real IPMI BMC per lab host: OpenIPMI's `ipmi_sim` in its own namespace `labbI` at
10.77.0.(200+I):623, whose chassis control really stops and starts that host; and a
Wake-on-LAN listener in the host's namespace. Both are started by `ulm lab up`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ulm.errors import UlmError
from ulm.lab import network
from ulm.lab.paths import NET, LabPaths, host_name
from ulm.lab.system import spawn

USER, PASSWORD = "admin", "password"  # lab only: the BMC answers only inside the lab network

LAN_CONF = """name "bmc-{name}"
set_working_mc 0x20
  startlan 1
    addr {ip} 623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid 6c61622d626d63{i:018d}
  endlan
  chassis_control "{python} -m ulm.lab.chassis {root} {i}"
  user 2 true  "{user}" "{password}" admin  10 none md2 md5 straight
"""

POWER_SENSOR = 2  # sensor 0 is ipmi_sim's watchdog
POWER_SENSOR_NAME = "Pwr Consumption"  # as many real BMCs call their power meter


def emu(power_file: Path | None = None) -> str:
    """The BMC's emulation script; with `power_file`, a power meter reading it (watts)."""
    lines = ["mc_setbmc 0x20", "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02",
             "sel_enable 0x20 1000 0x0a"]
    if power_file is not None:
        zeros = " ".join(["0" * 15] * 4)  # no threshold events
        lines += [f'sensor_add 0x20 0 {POWER_SENSOR} 0x0b 0x01 poll 1000 file "{power_file}" '
                  "div=2",
                  f"sensor_set_event_support 0x20 0 {POWER_SENSOR} enable scanning none {zeros}",
                  "main_sdr_add 0x20 " + " ".join(f"0x{b:02x}" for b in power_sdr())]
    return "\n".join([*lines, "mc_enable 0x20"]) + "\n"


def power_sdr(m: int = 2) -> list[int]:
    """A full sensor record (IPMI 2.0, table 43-1) for a power meter: unsigned, linear,
    reading x `m` = watts (one raw byte: 0-510 W in steps of 2 W)."""
    body = [0x20, 0x00, POWER_SENSOR, 0x07, 0x01,  # owner, LUN, number, entity: system board
            0x7f, 0x68, 0x0b, 0x01,  # initialisation, capabilities, type: other units, threshold
            0, 0, 0, 0, 0, 0,  # event masks: none
            0x00, 0x06, 0x00, 0x00,  # unsigned; base unit 6 = watts; no modifier; linear
            m & 0xff, (m >> 8) & 0x3, 0, 0, 0, 0,  # M, tolerance, B, accuracy, exponents
            0x00, 0x00, 0xff, 0x00, 0xff, 0x00,  # flags, nominal, normal max/min, range
            0, 0, 0, 0, 0, 0, 0, 0,  # thresholds, hysteresis
            0, 0, 0]  # reserved, OEM
    name = POWER_SENSOR_NAME.encode()
    body += [0xC0 | len(name), *name]
    return [0x00, 0x00, 0x51, 0x01, len(body), *body]


def bmc_ip(i: int) -> str:
    return f"{NET}.{200 + i}"


def start_bmc(paths: LabPaths, i: int) -> None:
    if shutil.which("ipmi_sim") is None:
        raise UlmError("ipmi_sim is not installed (Debian package openipmi: `ulm lab setup`)")
    ns = f"labb{i}"
    network.attach(ns, bmc_ip(i))
    h = paths.host(i)
    (h / "bmc-state").mkdir(exist_ok=True)
    (h / "bmc-lan.conf").write_text(LAN_CONF.format(
        name=host_name(i), ip=bmc_ip(i), i=i, python=sys.executable, root=paths.root,
        user=USER, password=PASSWORD))
    (h / "power_w").write_text("60\n")  # fakeload keeps it current
    (h / "bmc.emu").write_text(emu(h / "power_w"))
    proc = spawn(["nsenter", f"--net={network.netns_path(ns)}", "ipmi_sim", "-n", "-c",
                  str(h / "bmc-lan.conf"), "-f", str(h / "bmc.emu"), "-s", str(h / "bmc-state")],
                 h / "bmc.out", start_new_session=True)
    (h / "bmc.pid").write_text(str(proc.pid))


def start_wol(paths: LabPaths, i: int) -> None:
    h = paths.host(i)
    proc = spawn(["nsenter", f"--net={network.netns_path(host_name(i))}", sys.executable, "-m",
                  "ulm.lab.chassis", str(paths.root), str(i), "wol"], h / "wol.out",
                 start_new_session=True)
    (h / "wol.pid").write_text(str(proc.pid))
