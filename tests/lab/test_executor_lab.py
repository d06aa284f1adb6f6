"""The executor and the libvirt driver on real hosts: live migration, deadline, lost host."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.lab.helpers import eventually
from ulm.clock import WallClock
from ulm.drivers.base import DomainState, MigrationState, MigrationStatus
from ulm.drivers.libvirt import LibvirtHypervisor
from ulm.executor import Cause, Executor, Limits, MemoryJournal, Status
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


def test_slow_migration_is_aborted_at_its_deadline_and_stays_on_the_source(
        clean_lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    clean_lab.vm_add("slow1", "labh1", 256, "linux", dirty_mib=64)
    time.sleep(3)  # let the guest boot and start dirtying memory
    hv = hypervisor(clean_lab)
    limits = Limits(poll_s=2.5, deadline_s=3.0, bandwidth_mib_s=2)  # polls far apart
    caplog.set_level(logging.INFO, "ulm.executor")
    journal = MemoryJournal()
    res = Executor(hv, WallClock(), journal, limits).execute(
        plan(Move("slow1", "labh1", "labh2", "test")), "p2")
    o = res.outcomes[0]
    assert o.status is Status.FAILED and "deadline of 3 s passed: aborted" in o.detail
    assert o.cause is Cause.DEADLINE and "slow1 still runs on labh1" in o.detail
    # the abort went out at the deadline, not at the next poll 2 s later
    aborting = [r.created for r in caplog.records if "aborting" in r.getMessage()]
    assert len(aborting) == 1 and aborting[0] - o.started_at <= 3.0 + 0.5
    assert hv.states("slow1") == {"labh1": DomainState.RUNNING}
    assert journal.outcomes and journal.outcomes[0][2] == o  # recorded when it happened
    failed = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failed) == 1 and "slow1 labh1->labh2" in failed[0].getMessage()


def test_a_paused_vm_is_reported_paused_and_not_moved(clean_lab: Lab) -> None:
    clean_lab.vm_add("nap1", "labh1", 64, "idle")
    conn = clean_lab.connect(1)
    conn.lookupByName("nap1").suspend()
    hv = hypervisor(clean_lab)
    res = Executor(hv, WallClock(), MemoryJournal(), Limits(poll_s=0.2)).execute(
        plan(Move("nap1", "labh1", "labh2", "test")), "p5")
    o = res.outcomes[0]
    assert o.status is Status.SKIPPED and o.cause is Cause.PAUSED
    assert o.detail == "nap1 is paused on labh1: not moved"
    assert hv.states("nap1") == {"labh1": DomainState.PAUSED}  # not touched


class PausesOnFailure(LibvirtHypervisor):
    """The real driver, with one fault injected: when a migration is seen to have failed, the
    guest is paused on its source — what libvirt leaves behind when it cannot restart the
    guest's CPUs after a failure ("Failed to resume guest ... after failure": PAUSED,
    api-error), which cannot be provoked on demand here (libvirt 9 restores the guest itself
    after an abort, a lost destination and a suspend mid-migration: tried)."""

    def poll(self, job_id: str) -> MigrationStatus:
        status = super().poll(job_id)
        if status.state in (MigrationState.FAILED, MigrationState.ABORTED):
            vm, src = job_id.split("@")[0], job_id.split("@")[1].split("->")[0]
            self.conn(src).lookupByName(vm).suspend()
        return status


def test_a_vm_left_paused_by_a_failed_migration_is_resumed(
        clean_lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    clean_lab.vm_add("nap2", "labh1", 256, "linux", dirty_mib=64)
    time.sleep(3)
    n = clean_lab.n_hosts
    hv = PausesOnFailure({f"labh{i}": clean_lab.paths.unix_uri(i) for i in range(1, n + 1)},
                         {f"labh{i}": LabPaths.tcp_uri(i) for i in range(1, n + 1)})
    caplog.set_level(logging.INFO, "ulm.executor")
    res = Executor(hv, WallClock(), MemoryJournal(),
                   Limits(poll_s=0.2, deadline_s=2.0, bandwidth_mib_s=2)).execute(
        plan(Move("nap2", "labh1", "labh2", "test")), "p6")
    o = res.outcomes[0]
    assert o.status is Status.FAILED and o.resumed, o.detail
    assert "it was left paused on labh1: resumed" in o.detail
    assert hv.states("nap2") == {"labh1": DomainState.RUNNING}
    assert clean_lab.connect(1).lookupByName("nap2").state()[0] == 1  # VIR_DOMAIN_RUNNING
    assert any(r.levelno == logging.WARNING and "nap2 was left paused on labh1" in
               r.getMessage() for r in caplog.records)


def test_an_abort_that_cannot_reach_the_source_does_not_hang(clean_lab: Lab) -> None:
    """The source libvirtd stops answering (SIGSTOP) just before the deadline: the abort
    fails by keepalive, ULM stops waiting after its grace and reports; nothing hangs."""
    clean_lab.vm_add("hang1", "labh1", 256, "linux", dirty_mib=64)
    time.sleep(3)
    n = clean_lab.n_hosts
    hv = LibvirtHypervisor({f"labh{i}": clean_lab.paths.unix_uri(i) for i in range(1, n + 1)},
                           {f"labh{i}": LabPaths.tcp_uri(i) for i in range(1, n + 1)},
                           timeout_s=3.0, keepalive_s=1, keepalive_count=2)
    pid = int((clean_lab.paths.host(1) / "run" / "libvirtd.pid").read_text())
    stop = threading.Timer(3.0, lambda: os.kill(pid, signal.SIGSTOP))
    limits = Limits(poll_s=0.5, deadline_s=4.0, bandwidth_mib_s=2, abort_grace_s=6.0,
                    settle_s=2.0)
    # and wakes it up after 35 s whatever happens: a ULM that waits for ever would hang here
    wake = threading.Timer(35.0, lambda: os.kill(pid, signal.SIGCONT))
    t0 = time.monotonic()
    stop.start()
    wake.start()
    try:
        res = Executor(hv, WallClock(), MemoryJournal(), limits).execute(
            plan(Move("hang1", "labh1", "labh2", "test")), "p7")
        took = time.monotonic() - t0
    finally:
        stop.join()
        wake.cancel()
        os.kill(pid, signal.SIGCONT)
    o = res.outcomes[0]
    assert o.status is Status.FAILED and o.cause is Cause.ABORT_TIMEOUT, o.detail
    assert took < 30.0, took  # deadline 4 + keepalive 3 + grace 6 + settle 2 + opens
    assert "stopped waiting after 6 s" in o.detail
    # once libvirtd answers again the job ends (the abort reached it): on the source, running
    assert eventually(lambda: hv.states("hang1") == {"labh1": DomainState.RUNNING}, 60)


def test_a_network_cut_to_the_destination_is_seen_as_a_stall_while_it_lasts(
        clean_lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    clean_lab.vm_add("cut1", "labh1", 256, "linux", dirty_mib=16)
    time.sleep(3)
    hv = hypervisor(clean_lab)
    caplog.set_level(logging.INFO, "ulm.executor")
    cut = ["ip", "-n", "labsw", "link", "set", "v-labh2"]
    limits = Limits(poll_s=0.5, deadline_s=25.0, bandwidth_mib_s=4, stall_s=4.0)
    restored: list[float] = []

    def down() -> None:
        subprocess.run([*cut, "down"], check=True)
        time.sleep(12)
        subprocess.run([*cut, "up"], check=True)
        restored.append(time.time())

    cutter = threading.Timer(4.0, down)
    cutter.start()
    try:
        res = Executor(hv, WallClock(), MemoryJournal(), limits).execute(
            plan(Move("cut1", "labh1", "labh2", "test")), "p8")
    finally:
        cutter.join()
        subprocess.run([*cut, "up"], check=True)
    o = res.outcomes[0]
    stalls = [r for r in caplog.records if "cut1 labh1->labh2 stalled" in r.getMessage()]
    assert stalls and stalls[0].levelno == logging.WARNING
    assert stalls[0].created < restored[0]  # noticed during the cut, not after
    assert o.status is Status.FAILED or hv.states("cut1") == {"labh2": DomainState.RUNNING}
    assert len(hv.locate("cut1")) == 1


def test_recovery_adopts_an_orphaned_migration_and_applies_its_deadline(
        clean_lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    """ULM is SIGKILLed mid-migration (a process of its own here); peer-to-peer, libvirt goes
    on. The restarted executor says what it waits for, aborts it (past the deadline) and
    writes the outcome row."""
    clean_lab.vm_add("orph1", "labh1", 256, "linux", dirty_mib=64)
    time.sleep(3)
    code = ("import libvirt, sys\n"
            f"c = libvirt.open({clean_lab.paths.unix_uri(1)!r})\n"
            "c.lookupByName('orph1').migrateToURI3(" f"{LabPaths.tcp_uri(2)!r}, "
            "{libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 2}, libvirt.VIR_MIGRATE_LIVE | "
            "libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST | "
            "libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)\n")
    ulm = subprocess.Popen([sys.executable, "-c", code])
    journal = MemoryJournal(clock=WallClock())
    entry = journal.intent("p9", 1, Move("orph1", "labh1", "labh2", "test"))
    journal.update(entry, "started", "orph1@labh1->labh2#1")
    time.sleep(4)
    ulm.kill()  # SIGKILL
    ulm.wait()
    hv = hypervisor(clean_lab)
    assert len(hv.locate("orph1")) == 2  # still migrating without its client
    caplog.set_level(logging.INFO, "ulm.executor")
    t0 = time.monotonic()
    out = Executor(hv, WallClock(), journal, Limits(poll_s=0.2, deadline_s=3.0,
                                                    abort_grace_s=10.0)).recover()
    assert time.monotonic() - t0 < 20
    assert out[0].status is Status.FAILED and out[0].cause is Cause.DEADLINE, out[0].detail
    said = [r.getMessage() for r in caplog.records if "recovery" in r.getMessage()]
    assert said and "orph1 labh1->labh2" in said[0] and "still runs since" in said[0]
    assert hv.states("orph1") == {"labh1": DomainState.RUNNING}
    assert [o.action for _, _, o in journal.outcomes] == [Move("orph1", "labh1", "labh2",
                                                               "test")]


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
