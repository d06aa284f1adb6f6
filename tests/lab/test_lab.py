"""`ulm lab` against itself: real libvirtd hosts, real QEMU guests, real munin, real migration."""

from __future__ import annotations

import errno
import socket
import subprocess
import time

import libvirt
import pytest

from tests.conftest import LAB_HOSTS, LAB_REDFISH, LAB_SECURE
from tests.lab.helpers import eventually, in_controller, node_cpu
from ulm.lab.lab import Lab, exec_prefix
from ulm.lab.network import lab_namespaces

pytestmark = pytest.mark.lab


def test_hosts_answer_on_unix_socket_and_on_tcp_from_the_controller(lab: Lab) -> None:
    for i in range(1, lab.n_hosts + 1):
        conn = lab.connect(i)
        assert conn.getHostname() == f"labh{i}"
        conn.close()
    names = in_controller(
        "import json, libvirt\n"
        "libvirt.registerErrorHandler(lambda *a: None, None)\n"
        f"print(json.dumps([libvirt.open(f'qemu+tcp://10.77.0.{{i}}/system').getHostname() "
        f"for i in range(1, {lab.n_hosts + 1})]))")
    assert names == [f"labh{i}" for i in range(1, lab.n_hosts + 1)]


def test_the_root_namespace_cannot_reach_the_lab_network(lab: Lab) -> None:
    route = subprocess.run(["ip", "route", "show", "10.77.0.0/24"], capture_output=True,
                           text=True).stdout
    assert route.startswith("unreachable")
    with socket.socket() as s, pytest.raises(OSError) as err:
        s.settimeout(2)
        s.connect(("10.77.0.1", 16509))
    assert err.value.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)


def test_guest_runs_and_live_migrates_exactly_once(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.vm_add("mig1", "labh1", 128, "linux")
    assert lab.find("mig1") == "labh1"
    t = time.monotonic()
    where = in_controller(
        "import json, libvirt\n"
        "libvirt.registerErrorHandler(lambda *a: None, None)\n"
        "src = libvirt.open('qemu+tcp://10.77.0.1/system')\n"
        "f = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER"
        " | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)\n"
        "src.lookupByName('mig1').migrateToURI3('qemu+tcp://10.77.0.2/system', {}, f)\n"
        "print(json.dumps([[d.name() for d in libvirt.open(f'qemu+tcp://10.77.0.{i}/system')"
        ".listAllDomains()] for i in (1, 2, 3)]))")
    assert time.monotonic() - t < 60
    assert where == [[], ["mig1"], []]  # running once, on labh2; undefined on labh1


def test_forced_load_shows_in_libvirt_and_munin(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.set_load("labh1", "85")
    lab.set_load("labh2", "10")
    time.sleep(1.0)
    assert node_cpu(lab.connect(1)) == pytest.approx(0.85, abs=0.05)
    assert node_cpu(lab.connect(2)) == pytest.approx(0.10, abs=0.05)
    munin = in_controller(
        "import json, time\n"
        "from ulm.collect.munin import MuninSource\n"
        "s = MuninSource({'labh1': '10.77.0.1:4949', 'labh2': '10.77.0.2:4949'})\n"
        "s.collect(0); time.sleep(3)\n"
        "print(json.dumps({h.host: h.cpu for h in s.collect(1).hosts}))")
    assert munin["labh1"] == pytest.approx(0.85, abs=0.05)
    assert munin["labh2"] == pytest.approx(0.10, abs=0.05)


def test_load_follows_the_real_guests(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.vm_add("burner", "labh3", 128, "linux", burn=1)
    assert eventually(lambda: node_cpu(lab.connect(3), 1.5) > 0.35, timeout=40)
    assert node_cpu(lab.connect(2), 1.5) < 0.2


def test_power_off_kills_the_host_and_power_on_brings_it_back(clean_lab: Lab) -> None:
    lab = clean_lab
    lab.vm_add("victim", "labh3", 64, "idle")
    lab.power("labh3", False)
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(lab.paths.unix_uri(3))
    out = subprocess.run([*exec_prefix(), "python3", "-c",
                          "import socket; socket.create_connection(('10.77.0.3', 16509), 2)"],
                         capture_output=True, text=True)
    assert "Connection refused" in out.stderr
    lab.power("labh3", True)
    conn = lab.connect(3)
    assert conn.getHostname() == "labh3"
    # the definition survives, like a disk; the guest itself died with its host
    assert [d.name() for d in conn.listAllDomains()] == ["victim"]
    assert not conn.lookupByName("victim").isActive()


def test_bad_input_is_a_clear_error(lab: Lab) -> None:
    from ulm.errors import UlmError
    with pytest.raises(UlmError, match="unknown lab host 'labh9'"):
        lab.set_load("labh9", "50")
    with pytest.raises(UlmError, match="between 0 and 100"):
        lab.set_load("labh1", "150")
    with pytest.raises(UlmError, match="at least 96 MiB"):
        lab.vm_add("tiny", "labh1", 64, "linux")
    with pytest.raises(UlmError, match="already up"):
        lab.up(2)


def test_down_removes_everything_then_up_again(lab: Lab) -> None:
    lab.down()
    try:
        assert lab_namespaces() == []
        route = subprocess.run(["ip", "route", "show", "10.77.0.0/24"], capture_output=True,
                               text=True).stdout
        assert route == ""
        procs = subprocess.run(["ps", "-eo", "stat,args"], capture_output=True, text=True).stdout
        live = [p for p in procs.splitlines() if not p.startswith("Z")
                and any(k in p for k in ("libvirtd --listen", "qemu-system", "munin-node",
                                         "ulm.lab.fakeload", "ipmi_sim", "ulm.lab.chassis",
                                         "sushy-emulator", "ulm.lab.redfish",
                                         "sshd -f /etc/ssh/sshd_config"))]
        assert live == []
        assert not lab.paths.root.exists()
        from ulm.lab.system import cgroup_dirs
        assert not any(d.exists() for d in cgroup_dirs("ulm-lab"))
    finally:  # the session keeps its lab, even when an assertion above fails
        lab.up(LAB_HOSTS, redfish=LAB_REDFISH, secure=LAB_SECURE)
    assert lab.connect(1).getHostname() == "labh1"
