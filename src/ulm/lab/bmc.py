"""A real IPMI BMC per lab host: OpenIPMI's `ipmi_sim` in its own namespace `labbI` at
10.77.0.(200+I):623, whose chassis control really stops and starts that host; and a
Wake-on-LAN listener in the host's namespace. Both are started by `ulm lab up`."""

from __future__ import annotations

import shutil
import sys

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

EMU = ("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\n"
       "sel_enable 0x20 1000 0x0a\nmc_enable 0x20\n")


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
    (h / "bmc.emu").write_text(EMU)
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
