"""Ground truth for the fault campaign, independent of a live libvirtd.

A killed libvirtd leaves its guests running (QEMU is a separate process), so libvirt's own
answer ("no such host") says nothing about whether a VM is lost. The truth is the set of QEMU
processes each lab host really runs: the processes in the host's cgroups plus the ones its
libvirt run dir names (`run/libvirt/qemu/*.pid`), each read from /proc. libvirt is asked only
what a process cannot tell: whether the guest is paused.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ulm.drivers.base import DomainState
from ulm.drivers.libvirt import state_of
from ulm.errors import UlmError
from ulm.lab import hosts
from ulm.lab.lab import Lab
from ulm.lab.paths import host_name
from ulm.lab.system import cgroup_join, cgroup_pids, spawn

PAUSED = (DomainState.PAUSED, DomainState.POSTCOPY_FAILED)


def _argv(pid: int) -> list[str]:
    """The process's command line; empty for a zombie or a process that is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def guest_of(argv: list[str]) -> str:
    """The guest a QEMU command line runs (`-name guest=NAME,...`), '' if it is no QEMU."""
    if not argv or "qemu" not in Path(argv[0]).name:
        return ""
    for flag, value in itertools.pairwise(argv):
        if flag == "-name":
            first = value.split(",")[0]
            return first.removeprefix("guest=")
    return ""


def host_pids(lab: Lab, i: int) -> set[int]:
    """Every live process of host i: its cgroups, and the QEMUs its run dir names."""
    pids = set(cgroup_pids(hosts.cgroups(i)))
    for pid_file in (lab.paths.host(i) / "run" / "libvirt" / "qemu").glob("*.pid"):
        try:
            pids.add(int(pid_file.read_text().strip()))
        except (OSError, ValueError):
            continue
    return {p for p in pids if _argv(p)}


def qemus(lab: Lab, i: int) -> dict[str, list[int]]:
    """Guest name -> the pids of the QEMU processes running it on host i."""
    out: dict[str, list[int]] = {}
    for pid in sorted(host_pids(lab, i)):
        name = guest_of(_argv(pid))
        if name:
            out.setdefault(name, []).append(pid)
    return out


@dataclass
class Truth:
    """Where each VM really runs (one entry per QEMU process) and where libvirt calls it
    paused; `silent` are hosts whose libvirtd does not answer (their pause is unknown)."""

    runs: dict[str, list[str]] = field(default_factory=dict)
    paused: dict[str, list[str]] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)

    def lost(self, vm: str) -> bool:
        return not self.runs.get(vm)

    def duplicated(self, vm: str) -> bool:
        return len(self.runs.get(vm, [])) > 1

    def settled(self, vms: tuple[str, ...]) -> bool:
        return all(len(self.runs.get(vm, [])) == 1 for vm in vms)


def truth(lab: Lab, vms: tuple[str, ...]) -> Truth:
    import libvirt

    t = Truth(runs={vm: [] for vm in vms}, paused={vm: [] for vm in vms})
    for i in range(1, lab.n_hosts + 1):
        h = host_name(i)
        running = qemus(lab, i)
        for vm in vms:
            t.runs[vm] += [h] * len(running.get(vm, []))
        if not any(vm in running for vm in vms):
            continue
        try:
            conn = lab.connect(i) if hosts.is_on(lab.paths, i) else None
        except UlmError:  # it does not answer (yet): its pause is unknown
            conn = None
        if conn is None:
            t.silent.append(h)
            continue
        try:
            for vm in vms:
                if vm in running:
                    try:
                        if state_of(conn.lookupByName(vm)) in PAUSED:
                            t.paused[vm].append(h)
                    except libvirt.libvirtError:
                        continue
        finally:
            conn.close()
    return t


def settle(lab: Lab, vms: tuple[str, ...], wait_s: float) -> Truth:
    """The truth once every VM runs exactly once (libvirt tears the other copy down a moment
    after a migration ends), or as it is after `wait_s`."""
    end = time.monotonic() + wait_s
    while True:
        t = truth(lab, vms)
        if (t.settled(vms) and not t.silent) or time.monotonic() >= end:
            return t
        time.sleep(0.2)


def restart_libvirtd(lab: Lab, i: int, via: int) -> None:
    """Start a new libvirtd in host i's namespaces (entered through its process `via`), as a
    service manager would after a crash: it reconnects to the QEMUs that kept running."""
    dirs = hosts.cgroups(i)
    proc = spawn(["nsenter", "-t", str(via), "-m", "-u", "-n", "-C",
                  "/usr/sbin/libvirtd", "--listen", "--pid-file", "/run/libvirtd.pid"],
                 lab.paths.host(i) / "libvirtd.out",
                 preexec_fn=lambda: cgroup_join(dirs, os.getpid()))
    hosts.wait_answering(lab.paths, i, proc)


def kill_libvirtd(lab: Lab, i: int) -> bool:
    try:
        pid = int((lab.paths.host(i) / "run" / "libvirtd.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        return False
    for _ in range(50):  # until it is gone: a restart must not find the old one answering
        if not hosts.is_on(lab.paths, i):
            break
        time.sleep(0.02)
    return True


def heal(lab: Lab) -> None:
    """What the admin does after a fault: every link up, a host without libvirtd gets it
    back — restarted beside its surviving guests if it still runs anything, else powered on."""
    for i in range(1, lab.n_hosts + 1):
        subprocess.run(["ip", "-n", "labsw", "link", "set", f"v-{host_name(i)}", "up"],
                       check=False)
        if hosts.is_on(lab.paths, i):
            continue
        live = sorted(host_pids(lab, i))
        if live:
            restart_libvirtd(lab, i, live[0])
        else:
            hosts.power_on(lab.paths, i)
