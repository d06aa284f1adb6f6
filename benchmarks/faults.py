"""Fault campaign on the real lab: faults injected at random moments of live migrations.

    flock /tmp/ulm-lab.lock .venv/bin/python benchmarks/faults.py [--faults 12] [--seed 1]

Brings a 3-host lab up (and down). Each round migrates one of two busy guests through the
real executor and injects one fault at a random moment: the destination powered off
(`ulm lab power`), the destination's QEMU or libvirtd killed, the destination's network cut
for 10-30 s, the source libvirtd restarted, or a deadline the migration cannot meet. After
each, ground truth from libvirt: every managed VM runs exactly once and is not paused, no
powered-off host runs a VM, and the fault was reported (a WARNING/ERROR line naming the VM
and an outcome row). Prints a table (fault kind x injected, lost, duplicated, paused,
host-off-with-VM, unreported) and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ulm.clock import WallClock
from ulm.drivers.base import DomainState
from ulm.drivers.libvirt import LibvirtHypervisor
from ulm.executor import Executor, Limits, MemoryJournal, Status
from ulm.lab import hosts
from ulm.lab.lab import Lab
from ulm.lab.paths import LabPaths, host_name
from ulm.lab.system import cgroup_join, cgroup_pids, spawn
from ulm.model import Move, Plan

KINDS = ("dst_power_off", "dst_qemu_kill", "dst_libvirtd_kill", "dst_net_cut",
         "src_libvirtd_restart", "deadline")
VMS = ("fault1", "fault2")
COLUMNS = ("injected", "missed", "failed", "lost", "duplicated", "paused", "host_off_with_vm",
           "unreported")


@dataclass
class Tally:
    rows: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: dict.fromkeys(COLUMNS, 0) for k in KINDS})

    def add(self, kind: str, col: str, n: int = 1) -> None:
        self.rows[kind][col] += n

    def clean(self) -> bool:
        return all(r[c] == 0 for r in self.rows.values()
                   for c in ("lost", "duplicated", "paused", "host_off_with_vm", "unreported"))

    def table(self) -> str:
        lines = [f"{'fault':<22}" + "".join(f"{c:>18}" for c in COLUMNS)]
        for kind, row in self.rows.items():
            lines.append(f"{kind:<22}" + "".join(f"{row[c]:>18}" for c in COLUMNS))
        return "\n".join(lines)


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Campaign:
    def __init__(self, lab: Lab, seed: int = 1) -> None:
        self.lab = lab
        self.rng = random.Random(seed)
        self.names = [host_name(i) for i in range(1, lab.n_hosts + 1)]
        self.hv = LibvirtHypervisor({h: lab.paths.unix_uri(i) for i, h in enumerate(self.names, 1)},
                                    {h: LabPaths.tcp_uri(i) for i, h in enumerate(self.names, 1)},
                                    timeout_s=5.0, keepalive_s=2, keepalive_count=2)
        self.tally = Tally()
        self.took = 6.0  # seconds a migration takes here (measured as the campaign goes)
        self.log = Warnings()
        logger = logging.getLogger("ulm.executor")
        logger.addHandler(self.log)
        logger.setLevel(logging.INFO)

    # -- setup and ground truth ----------------------------------------------------------------

    def prepare(self) -> None:
        for vm in VMS:
            if not self.lab.find(vm):
                self.lab.vm_add(vm, self.names[0], 256, "linux", dirty_mib=8)
        time.sleep(3)

    def restore(self) -> None:
        """Every host on and answering, every link up, every managed VM running once."""
        for i, h in enumerate(self.names, 1):
            subprocess.run(["ip", "-n", "labsw", "link", "set", f"v-{h}", "up"], check=False)
            if not hosts.is_on(self.lab.paths, i):  # off, or its libvirtd killed
                self.lab.power(h, False)  # no orphaned QEMU left behind
                self.lab.power(h, True)
        for vm in VMS:
            self._settle(vm)
            states = self.hv.states(vm)
            active = [h for h, s in states.items() if s is not DomainState.SHUTOFF]
            if not active:
                if states:  # a definition left behind somewhere
                    self.lab.vm_rm(vm)
                self.lab.vm_add(vm, self.names[0], 256, "linux", dirty_mib=8)
            for h in active[1:]:
                self.hv.conn(h).lookupByName(vm).destroy()
            for h, s in self.hv.states(vm).items():
                if s is DomainState.PAUSED:
                    self.hv.resume(vm, h)

    def _settle(self, vm: str, wait_s: float = 20.0) -> None:
        end = time.monotonic() + wait_s
        while time.monotonic() < end and len(self.hv.locate(vm)) != 1:
            time.sleep(0.5)

    def check(self, kind: str, vm: str, off: list[int]) -> None:
        for i in off:  # a powered-off host runs nothing: no QEMU left in its cgroups
            if cgroup_pids(hosts.cgroups(i)):
                self.tally.add(kind, "host_off_with_vm")
        for name in VMS:
            self._settle(name, 15.0)
            states = self.hv.states(name)
            active = [h for h, s in states.items() if s not in (DomainState.SHUTOFF,
                                                                 DomainState.CRASHED)]
            if not active:
                self.tally.add(kind, "lost")
            elif len(active) > 1:
                self.tally.add(kind, "duplicated")
            if any(s in (DomainState.PAUSED, DomainState.POSTCOPY_FAILED)
                   for s in states.values()):
                self.tally.add(kind, "paused")

    # -- one fault -----------------------------------------------------------------------------

    def round(self, kind: str) -> None:
        vm = self.rng.choice(VMS)
        src = self.hv.locate(vm)[0]
        # The destination runs no managed VM: a fault that kills a host (power, libvirtd)
        # must only be able to hit the migration, not bystanders.
        busy = {h for v in VMS for h in self.hv.locate(v)}
        dst = self.rng.choice([h for h in self.names if h not in busy])
        s, d = self.names.index(src) + 1, self.names.index(dst) + 1
        at = self.rng.uniform(0.2, 0.8) * self.took
        limits = Limits(poll_s=0.5, deadline_s=40.0, bandwidth_mib_s=32, abort_grace_s=15.0,
                        settle_s=10.0, stall_s=5.0)
        off: list[int] = []
        missed: list[str] = []
        fault: Callable[[], None] = lambda: None  # noqa: E731
        if kind == "deadline":
            limits = Limits(poll_s=0.5, deadline_s=round(self.rng.uniform(1.0, 3.0), 1),
                            bandwidth_mib_s=8, abort_grace_s=15.0, settle_s=10.0)
        elif kind == "dst_power_off":
            def fault() -> None:
                off.append(d)
                self.lab.power(dst, False)
        elif kind == "dst_qemu_kill":
            def fault() -> None:
                # Only while the migration runs: once the source's job has ended the VM lives
                # on the destination, and killing it there is a crashed VM, not a fault of
                # the migration (it is counted as missed, not injected).
                if not self._migrating(vm, src, dst):
                    missed.append(kind)
                    return
                self._kill_file(self.lab.paths.host(d) / "run" / "libvirt" / "qemu" / f"{vm}.pid")
        elif kind == "dst_libvirtd_kill":
            def fault() -> None:
                self._kill_file(self.lab.paths.host(d) / "run" / "libvirtd.pid")
        elif kind == "dst_net_cut":
            def fault() -> None:
                link = ["ip", "-n", "labsw", "link", "set", f"v-{dst}"]
                subprocess.run([*link, "down"], check=True)
                threading.Timer(self.rng.uniform(10, 30),
                                lambda: subprocess.run([*link, "up"], check=False)).start()
        elif kind == "src_libvirtd_restart":
            def fault() -> None:
                self._restart_libvirtd(s)
        timer = threading.Timer(at, fault)
        journal = MemoryJournal()
        self.log.lines.clear()
        self.tally.add(kind, "injected")
        t0 = time.monotonic()
        timer.start()
        o = Executor(self.hv, WallClock(), journal, limits).execute(
            Plan("s", "p", 0.0, (Move(vm, src, dst, kind),)), f"f-{kind}").outcomes[0]
        timer.join()
        if missed:
            self.tally.add(kind, "injected", -1)
            self.tally.add(kind, "missed")
        if o.status is Status.DONE and kind != "deadline":
            self.took = 0.7 * self.took + 0.3 * (time.monotonic() - t0)
        if o.status is Status.FAILED:
            self.tally.add(kind, "failed")
            said = any(vm in line and "failed" in line for line in self.log.lines)
            if not said or not journal.outcomes:
                self.tally.add(kind, "unreported")
        elif o.status is Status.DONE and self.hv.locate(vm) != [dst]:
            self.tally.add(kind, "unreported")  # "done" but not (only) on the destination
        self.check(kind, vm, off)
        print(f"{kind:<22} {vm} {src}->{dst} at {at:4.1f} s: {o.status.value}: {o.detail}",
              flush=True)
        self.restore()

    def _migrating(self, vm: str, src: str, dst: str) -> bool:
        """Is the VM still on its way: the source runs the outgoing job and the incoming copy
        on the destination has not been resumed yet (after the switchover, the destination's
        QEMU *is* the VM: killing it is a crash, not a migration fault)?"""
        import libvirt

        try:
            if self.hv.conn(src).lookupByName(vm).jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                return False
            state = self.hv.conn(dst).lookupByName(vm).state()[0]
        except libvirt.libvirtError:
            return False
        return bool(state != libvirt.VIR_DOMAIN_RUNNING)

    @staticmethod
    def _kill_file(pid_file: os.PathLike[str]) -> None:
        try:
            with open(pid_file) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass  # nothing to kill (yet, or any more): the fault missed

    def _restart_libvirtd(self, i: int) -> None:
        """SIGKILL the host's libvirtd and start a new one in the same namespaces (entered
        through one of its QEMU processes), the way a service manager would restart it."""
        run = self.lab.paths.host(i) / "run"
        old = int((run / "libvirtd.pid").read_text().strip())
        qemus = [pid for p in (run / "libvirt" / "qemu").glob("*.pid")
                 if Path(f"/proc/{(pid := int(p.read_text().strip()))}/ns/mnt").exists()]
        if not qemus:
            return  # no live QEMU to enter the host's namespaces through: the fault missed
        os.kill(old, signal.SIGKILL)
        time.sleep(0.5)
        dirs = hosts.cgroups(i)
        proc = spawn(["nsenter", "-t", str(qemus[0]), "-m", "-u", "-n", "-C",
                      "/usr/sbin/libvirtd", "--listen", "--pid-file", "/run/libvirtd.pid"],
                     self.lab.paths.host(i) / "libvirtd.out",
                     preexec_fn=lambda: cgroup_join(dirs, os.getpid()))
        hosts.wait_answering(self.lab.paths, i, proc)

    def run(self, n: int, kinds: tuple[str, ...] = KINDS) -> Tally:
        self.prepare()
        try:
            for k in range(n):
                self.round(kinds[k % len(kinds)])
        finally:
            logging.getLogger("ulm.executor").removeHandler(self.log)
            self.hv.close()
        return self.tally


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    lab = Lab()
    if lab.is_up():
        lab.down()
    lab.up(3, power=False)
    try:
        tally = Campaign(lab, args.seed).run(args.faults)
    finally:
        lab.down()
    print(tally.table())
    print(json.dumps({"faults": args.faults, "seed": args.seed, "rows": tally.rows,
                      "clean": tally.clean()}))


if __name__ == "__main__":
    main()
