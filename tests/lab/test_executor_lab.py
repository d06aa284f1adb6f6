"""The executor and the libvirt driver on real hosts: live migration, deadline, lost host."""

from __future__ import annotations

import threading
import time

import pytest

from ulm.clock import WallClock
from ulm.drivers.libvirt import LibvirtHypervisor
from ulm.executor import Executor, Limits, MemoryJournal, Status
from ulm.lab.lab import Lab
from ulm.lab.paths import LabPaths
from ulm.model import Move, Plan, PowerOff

pytestmark = pytest.mark.lab


def hypervisor(lab: Lab) -> LibvirtHypervisor:
    # The test runs in the root namespace: it drives each host through its unix socket, and
    # the source libvirtd reaches the destination over the lab network (peer-to-peer).
    n = lab.n_hosts
    return LibvirtHypervisor({f"labh{i}": lab.paths.unix_uri(i) for i in range(1, n + 1)},
                             {f"labh{i}": LabPaths.tcp_uri(i) for i in range(1, n + 1)})


def plan(*actions: Move | PowerOff) -> Plan:
    return Plan("snap", "pol", 0.0, tuple(actions))


def test_live_migration_verified_on_both_hosts(clean_lab: Lab) -> None:
    clean_lab.vm_add("exec1", "labh1", 128, "linux")
    hv = hypervisor(clean_lab)
    journal = MemoryJournal()
    res = Executor(hv, WallClock(), journal, Limits(poll_s=0.2)).execute(
        plan(Move("exec1", "labh1", "labh2", "test")), "p1")
    assert res.outcomes[0].status is Status.DONE, res.outcomes[0].detail
    assert hv.locate("exec1") == ["labh2"]
    assert hv.list_vms("labh1") == [] and hv.list_vms("labh2") == ["exec1"]
    assert [e.state for e in journal.entries.values()] == ["done"]


def test_slow_migration_hits_its_deadline_and_stays_on_the_source(clean_lab: Lab) -> None:
    clean_lab.vm_add("slow1", "labh1", 256, "linux", dirty_mib=64)
    time.sleep(3)  # let the guest boot and start dirtying memory
    hv = hypervisor(clean_lab)
    limits = Limits(poll_s=0.2, deadline_s=3.0, bandwidth_mib_s=2)
    res = Executor(hv, WallClock(), MemoryJournal(), limits).execute(
        plan(Move("slow1", "labh1", "labh2", "test")), "p2")
    o = res.outcomes[0]
    assert o.status is Status.FAILED and "deadline of 3 s passed: aborted" in o.detail
    assert "slow1 still runs on labh1" in o.detail
    assert hv.locate("slow1") == ["labh1"]
    assert clean_lab.connect(1).lookupByName("slow1").isActive()


def test_destination_powered_off_mid_migration(clean_lab: Lab) -> None:
    clean_lab.vm_add("lost1", "labh1", 256, "linux", dirty_mib=64)
    time.sleep(3)
    hv = hypervisor(clean_lab)
    limits = Limits(poll_s=0.2, deadline_s=60.0, bandwidth_mib_s=4)
    killer = threading.Timer(2.0, lambda: clean_lab.power("labh2", False))
    killer.start()
    res = Executor(hv, WallClock(), MemoryJournal(), limits).execute(
        plan(Move("lost1", "labh1", "labh2", "test")), "p3")
    killer.join()
    o = res.outcomes[0]
    assert o.status is Status.FAILED, o.detail
    assert hv.locate("lost1") == ["labh1"]  # exactly once, on its source


def test_never_powers_off_a_host_that_runs_a_vm(clean_lab: Lab) -> None:
    from ulm.drivers.base import PowerState
    clean_lab.vm_add("keep1", "labh3", 64, "idle")

    class LabPower:  # the lab's own power switch, as a `Power` driver
        def power_on(self) -> None:
            clean_lab.power("labh3", True)

        def power_off(self) -> None:
            clean_lab.power("labh3", False)

        def state(self) -> PowerState:
            from ulm.lab import hosts
            return PowerState.ON if hosts.is_on(clean_lab.paths, 3) else PowerState.OFF

    hv = hypervisor(clean_lab)
    res = Executor(hv, WallClock(), MemoryJournal(), Limits(), power={"labh3": LabPower()}
                   ).execute(plan(PowerOff("labh3", "test")), "p4")
    assert res.outcomes[0].status is Status.SKIPPED
    assert res.outcomes[0].detail == "labh3 still runs keep1"
    assert hv.locate("keep1") == ["labh3"]
