"""Power control of lab hosts through their real BMC (ipmi_sim) and Wake-on-LAN listener,
driven by ULM's drivers from inside the controller namespace."""

from __future__ import annotations

import json

import pytest

from tests.lab.helpers import in_controller
from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab

PRELUDE = (
    "import json, time, libvirt\n"
    "from ulm.power.ipmi import IpmiPower, PowerError\n"
    "from ulm.power.wol import WolPower\n"
    "libvirt.registerErrorHandler(lambda *a: None, None)\n"
    "def answers(i):\n"
    "    try:\n"
    "        libvirt.open(f'qemu+tcp://10.77.0.{i}/system').close(); return True\n"
    "    except libvirt.libvirtError:\n"
    "        return False\n"
    "def wait(i, want, s=30):\n"
    "    end = time.time() + s\n"
    "    while time.time() < end and answers(i) != want: time.sleep(0.1)\n"
    "    return answers(i) == want\n")


def test_ipmi_powers_a_host_off_and_on_for_real(clean_lab: Lab) -> None:
    r = in_controller(PRELUDE + (
        "p = IpmiPower('10.77.0.203', 'admin', 'password')\n"
        "out = [p.state().value]\n"
        "p.power_off(); out += [wait(3, False), p.state().value]\n"
        "p.power_on(); out += [wait(3, True), p.state().value]\n"
        "print(json.dumps(out))"))
    assert r == ["on", True, "off", True, "on"]


def test_wake_on_lan_wakes_a_powered_off_host(clean_lab: Lab) -> None:
    clean_lab.power("labh3", False)
    mac = json.loads(clean_lab.paths.state_file.read_text())["macs"]["labh3"]
    r = in_controller(PRELUDE + (
        f"w = WolPower('{mac}', '10.77.0.255', probe=lambda: answers(3))\n"
        "before = w.state().value\n"
        "t = time.time(); w.power_on(); ok = wait(3, True)\n"
        "print(json.dumps([before, ok, w.state().value, time.time() - t]))"))
    before, ok, after, took = r
    assert (before, ok, after) == ("off", True, "on")
    assert took < 15
    assert "wol magic packet" in (clean_lab.paths.host(3) / "power.log").read_text()


def test_bmc_errors_are_clear_and_never_show_the_password(clean_lab: Lab) -> None:
    r = in_controller(PRELUDE + (
        "out = []\n"
        "for addr, pw in (('10.77.0.201', 'S3cret-wrong'), ('10.77.0.209', 'S3cret-x')):\n"
        "    t = time.time()\n"
        "    try:\n"
        "        IpmiPower(addr, 'admin', pw).state(); out.append(['no error', 0])\n"
        "    except PowerError as e:\n"
        "        out.append([str(e), time.time() - t])\n"
        "print(json.dumps(out))"))
    (wrong, _), (dead, dead_s) = r
    assert "10.77.0.201" in wrong and "password" in wrong.lower()
    assert "S3cret" not in wrong and "S3cret" not in dead
    assert "10.77.0.209" in dead and "no answer" in dead and dead_s < 30


def test_redfish_powers_a_host_off_and_on_for_real(clean_lab: Lab) -> None:
    """`ulm lab config`'s Redfish driver for labh2 (sushy-tools in labrf), through the
    executor: the power-off really stops that host's libvirtd, the power-on brings it back."""
    toml = clean_lab.config_toml("redfish")
    assert 'driver = "redfish"' in toml and 'system = "labh2"' in toml
    path = clean_lab.paths.root / "redfish-test.toml"
    path.write_text(toml)
    r = in_controller(PRELUDE + (
        "from pathlib import Path\n"
        "from ulm.clock import WallClock\n"
        "from ulm.config import load_config\n"
        "from ulm.executor import Executor, Limits, MemoryJournal\n"
        "from ulm.model import Plan, PowerOff, PowerOn\n"
        "from ulm.power.factory import driver\n"
        "from tests.power.conftest import EmptyHosts\n"
        f"cfg = load_config(Path('{path}'))\n"
        "h = next(h for h in cfg.hosts if h.name == 'labh2')\n"
        "p = driver(h.power, lambda: answers(2), 'labh2')\n"
        "ex = Executor(EmptyHosts(), WallClock(), MemoryJournal(),\n"
        "              Limits(poll_s=0.5, power_timeout_s=40), power={'labh2': p})\n"
        "out = [p.state().value]\n"
        "off = ex.execute(Plan('s', 'p', 0.0, (PowerOff('labh2', 'test'),)), 'off').outcomes[0]\n"
        "out += [off.status.value, wait(2, False, 10)]\n"
        "on = ex.execute(Plan('s', 'p', 0.0, (PowerOn('labh2', 'test'),)), 'on').outcomes[0]\n"
        "out += [on.status.value, wait(2, True, 30), p.state().value]\n"
        "print(json.dumps(out))"))
    assert r == ["on", "done", True, "done", True, "on"]
    log = (clean_lab.paths.host(2) / "power.log").read_text()
    assert "redfish power Off" in log and "redfish power On" in log
