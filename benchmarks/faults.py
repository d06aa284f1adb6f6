"""Fault campaign on the real lab: faults injected at random moments of live migrations.

    .venv/bin/python benchmarks/faults.py --faults 200 --out faults.jsonl [--seed 1]
    .venv/bin/python benchmarks/faults.py --table faults.jsonl

The campaign takes /tmp/ulm-lab.lock itself, one chunk of at most `--chunk` faults at a time
(do not wrap it in `flock`), so other lab users get the lab between chunks; each chunk brings
the lab up if it is not. Each fault migrates one of two small guests through the real executor
and injects one fault at a random moment of the migration job: the destination powered off
(`ulm lab power`), its QEMU or libvirtd killed, its network cut for 10-30 s, the source
libvirtd restarted, or a deadline the migration cannot meet. A fault that would land after
the job ended is not injected (`missed`). Then the admin's part (links up, libvirtd restarted
where it died) and the ground truth from the QEMU processes each host runs
(`fault_truth.py`): every managed VM runs exactly once and is not paused, no powered-off host
runs a VM, and a failure was reported (a WARNING/ERROR line naming the VM and an outcome row).
Each fault appends one JSON line to `--out`; `--table` renders the table from that file.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: `benchmarks` is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import fault_procs as fp
from benchmarks import fault_truth as ft
from benchmarks.fault_rounds import ProcRounds

from ulm.clock import WallClock
from ulm.drivers.libvirt import LibvirtHypervisor
from ulm.errors import UlmError
from ulm.executor import Executor, Limits, MemoryJournal, Status
from ulm.lab import hosts
from ulm.lab.lab import Lab
from ulm.lab.paths import LabPaths, host_name
from ulm.model import Move, Plan

KINDS = ("dst_power_off", "dst_qemu_kill", "dst_libvirtd_kill", "dst_net_cut",
         "src_libvirtd_restart", "deadline", *fp.WORKER_KINDS, *fp.DAEMON_KINDS)
VMS = ("fault1", "fault2")
GUEST_MIB = 128  # small guests: a migration takes ~1-2 s, and a fault a few seconds
DIRTY_MIB = 4  # ... but one that dirties memory, so the job lasts long enough to be hit
COLUMNS = ("injected", "missed", "failed", "lost", "duplicated", "paused", "host_off_with_vm",
           "unreported")
BAD = ("lost", "duplicated", "paused", "host_off_with_vm", "unreported")
LOCK = "/tmp/ulm-lab.lock"


@dataclass
class Tally:
    rows: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: dict.fromkeys(COLUMNS, 0) for k in KINDS})
    took: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    seconds: float = 0.0
    faults: int = 0

    def add(self, kind: str, col: str, n: int = 1) -> None:
        self.rows[kind][col] += n

    def add_record(self, rec: dict[str, Any]) -> None:
        for col in COLUMNS:
            self.add(rec["kind"], col, int(rec.get(col, 0)))
        self.took[rec["kind"]] += float(rec.get("seconds", 0.0))
        self.seconds += float(rec.get("seconds", 0.0))
        self.faults += 1

    def merge(self, other: Tally) -> None:
        for kind, row in other.rows.items():
            for col, v in row.items():
                self.add(kind, col, v)
            self.took[kind] += other.took[kind]
        self.seconds += other.seconds
        self.faults += other.faults

    def clean(self) -> bool:
        return all(r[c] == 0 for r in self.rows.values() for c in BAD)

    def table(self) -> str:
        def per_fault(secs: float, row: dict[str, int]) -> str:
            n = row["injected"] + row["missed"]
            return f"{secs / n:.1f}" if n else "-"

        head = ("fault", *COLUMNS, "s/fault")
        body = [[k, *(str(r[c]) for c in COLUMNS), per_fault(self.took[k], r)]
                for k, r in self.rows.items()]
        total = {c: sum(r[c] for r in self.rows.values()) for c in COLUMNS}
        body.append(["total", *(str(total[c]) for c in COLUMNS), per_fault(self.seconds, total)])
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        if self.faults:
            lines.append(f"\n{self.faults} faults, {self.seconds / self.faults:.1f} s per "
                         f"fault, clean: {self.clean()}")
        return "\n".join(lines)


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Campaign(ProcRounds):
    def __init__(self, lab: Lab, seed: int = 1, out: Path | None = None) -> None:
        self.lab = lab
        self.rng = random.Random(seed)
        self.seed = seed
        self.out = out
        self.names = [host_name(i) for i in range(1, lab.n_hosts + 1)]
        self.hv = LibvirtHypervisor({h: lab.paths.unix_uri(i) for i, h in enumerate(self.names, 1)},
                                    {h: LabPaths.tcp_uri(i) for i, h in enumerate(self.names, 1)},
                                    timeout_s=5.0, keepalive_s=2, keepalive_count=2)
        self.tally = Tally()
        # seconds a migration job takes here: the copy at 32 MiB/s, corrected as the campaign
        # goes (by the jobs a fault missed); too short would only ever hit the job's start
        self.took = GUEST_MIB / 32
        self.log = Warnings()
        self.work = Path(tempfile.mkdtemp(prefix="ulm-faults-"))
        self.watcher: fp.Watcher | None = None

    # -- setup and repair ----------------------------------------------------------------------

    def prepare(self) -> None:
        ft.heal(self.lab)
        t = ft.truth(self.lab, VMS)
        if any(t.runs.values()) and not t.settled(VMS):  # a chunk before may have left a copy
            t = ft.settle(self.lab, VMS, 5.0)
        self.repair(t)

    def remove(self) -> None:
        """The campaign's guests go (they dirty memory, so they cost CPU) when it hands the
        shared lab back."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        for vm in VMS:
            with contextlib.suppress(UlmError):
                self.lab.vm_rm(vm)

    def repair(self, t: ft.Truth) -> None:
        """Back to the start state (every VM runs once, not paused), after counting."""
        busy = {h for v in VMS for h in t.runs[v]}
        for vm in VMS:
            if t.lost(vm):
                with contextlib.suppress(UlmError):  # none left: nothing to remove
                    self.lab.vm_rm(vm)  # definitions left behind anywhere
                free = [h for h in self.names if h not in busy]  # one VM per host
                self.lab.vm_add(vm, free[0], GUEST_MIB, "linux", dirty_mib=DIRTY_MIB)
                busy.add(free[0])
                continue
            for h in t.runs[vm][1:]:  # a second copy: the first one found stays
                self.hv.conn(h).lookupByName(vm).destroy()
            for h in t.paused[vm]:
                if h in t.runs[vm][:1]:
                    self.hv.resume(vm, h)

    # -- one fault -----------------------------------------------------------------------------

    def round(self, kind: str) -> dict[str, Any]:
        t0 = time.monotonic()
        start = ft.truth(self.lab, VMS)
        vm = self.rng.choice(VMS)
        src = start.runs[vm][0]
        # The destination runs no managed VM: a fault that kills a host (power, libvirtd)
        # must only be able to hit the migration, not bystanders.
        dst = self.rng.choice([h for h in self.names if not any(h in start.runs[v] for v in VMS)])
        s, d = self.names.index(src) + 1, self.names.index(dst) + 1
        rec: dict[str, Any] = {"kind": kind, "vm": vm, "src": src, "dst": dst,
                               "seed": self.seed, **dict.fromkeys(COLUMNS, 0)}
        limits = Limits(poll_s=0.2, deadline_s=40.0, bandwidth_mib_s=32, abort_grace_s=15.0,
                        settle_s=10.0, stall_s=5.0)
        off: list[int] = []
        cut: list[threading.Timer] = []
        fault: Callable[[], None] | None = None
        if kind == "deadline":
            limits = Limits(poll_s=0.2, deadline_s=round(self.rng.uniform(0.5, 2.0), 1),
                            bandwidth_mib_s=8, abort_grace_s=15.0, settle_s=10.0)
        elif kind == "dst_power_off":
            def fault() -> None:
                off.append(d)
                hosts.power_off(self.lab.paths, d)
        elif kind == "dst_qemu_kill":
            def fault() -> None:
                for pid in ft.qemus(self.lab, d).get(vm, []):
                    os.kill(pid, signal.SIGKILL)
        elif kind == "dst_libvirtd_kill":
            def fault() -> None:
                ft.kill_libvirtd(self.lab, d)
        elif kind == "dst_net_cut":
            def fault() -> None:
                link = ["ip", "-n", "labsw", "link", "set", f"v-{dst}"]
                subprocess.run([*link, "down"], check=True)
                cut.append(threading.Timer(self.rng.uniform(10, 30),
                                           lambda: subprocess.run([*link, "up"], check=False)))
                cut[0].start()
        elif kind == "src_libvirtd_restart":
            def fault() -> None:
                ft.kill_libvirtd(self.lab, s)
                ft.restart_libvirtd(self.lab, s, ft.qemus(self.lab, s)[vm][0])
        check: Callable[[], bool] | None = None
        if kind in fp.DAEMON_KINDS:
            fault, check = self.daemon_fault(kind, src)
        if kind in fp.WORKER_KINDS:
            status, reported = self.worker_round(kind, vm, src, dst, rec)
            if kind == "bmc_silent_wake":
                off.append(d)  # ... if the wake failed: it must run nothing then
            rec.update(status=status, execute_s=round(time.monotonic() - t0, 2))
        else:
            status, reported = self.executor_round(kind, vm, src, dst, fault, limits, rec)
        if check is not None and not check():  # also ends the fault
            reported = False
        for i in off:  # a powered-off host runs nothing: no QEMU left in its cgroups
            if not hosts.is_on(self.lab.paths, i):
                rec["host_off_with_vm"] += int(bool(ft.qemus(self.lab, i)))
        if kind == "bmc_silent_off" and not hosts.is_on(self.lab.paths, s):
            rec["host_off_with_vm"] += int(bool(ft.qemus(self.lab, s)))
        for timer in cut:  # the cut lasts as long as it was meant to
            timer.join()
        ft.heal(self.lab)
        t = ft.settle(self.lab, VMS, 20.0)
        for name in VMS:
            rec["lost"] += int(t.lost(name))
            rec["duplicated"] += int(t.duplicated(name))
            rec["paused"] += int(bool(t.paused[name]))
        if not reported:
            rec["unreported"] = 1
        elif status == Status.DONE.value and t.runs[vm] != [dst]:
            rec["unreported"] = 1  # "done" but not (only) on the destination
        print(f"{kind:<22} {vm} {src}->{dst} at {rec['at_s']:5.2f} s "
              f"(executor {rec['execute_s']:4.1f} s): {status}: "
              f"{rec.get('detail', '')} | runs {t.runs} paused {t.paused}", flush=True)
        self.repair(t)
        rec["seconds"] = round(time.monotonic() - t0, 2)
        return rec

    def executor_round(self, kind: str, vm: str, src: str, dst: str,
                       fault: Callable[[], None] | None, limits: Limits,
                       rec: dict[str, Any]) -> tuple[str, bool]:
        """The migration by the executor in this process; (its status, reported)."""
        s, d = self.names.index(src) + 1, self.names.index(dst) + 1
        t0 = time.monotonic()
        shot: dict[str, float] = {}
        thread = threading.Thread(target=self._inject, args=(fault, vm, s, d, shot))
        journal = MemoryJournal()
        self.log.lines.clear()
        thread.start()
        o = Executor(self.hv, WallClock(), journal, limits).execute(
            Plan("s", "p", 0.0, (Move(vm, src, dst, kind),)), f"f-{kind}").outcomes[0]
        thread.join()
        rec.update(status=o.status.value, detail=o.detail, at_s=round(shot.get("at", -1), 2),
                   execute_s=round(time.monotonic() - t0, 2))
        if kind == "deadline" or "at" in shot:
            rec["injected"] = 1
        else:
            rec["missed"] = 1
        if o.status is Status.DONE and "job" in shot and "at" not in shot:
            self.took = 0.7 * self.took + 0.3 * (time.monotonic() - shot["job"])
        if o.status is not Status.FAILED:
            return o.status.value, True
        rec["failed"] = 1
        said = any(vm in line and "failed" in line for line in self.log.lines)
        return o.status.value, said and bool(journal.outcomes)

    def _inject(self, fault: Callable[[], None] | None, vm: str, s: int, d: int,
                shot: dict[str, float]) -> None:
        """Waits for the migration job to start, then for a random part of its expected
        length, and injects the fault if the job still runs (after the switchover the
        destination's QEMU *is* the VM: killing it is a crash, not a migration fault)."""
        import libvirt

        if fault is None:
            return
        src, dst = self.lab.connect(s), self.lab.connect(d)
        try:
            end = time.monotonic() + 10.0
            while not self._migrating(src, dst, vm):
                if time.monotonic() > end:
                    return
                time.sleep(0.02)
            shot["job"] = time.monotonic()
            time.sleep(self.rng.uniform(0.0, 1.0) * self.took)
            if self._migrating(src, dst, vm):
                shot["at"] = time.monotonic() - shot["job"]
                fault()
        finally:
            for c in (src, dst):
                with contextlib.suppress(libvirt.libvirtError):  # its libvirtd is gone
                    c.close()

    @staticmethod
    def _migrating(src: Any, dst: Any, vm: str) -> bool:
        """The source runs the outgoing job and the incoming copy is not resumed yet."""
        import libvirt

        try:
            if src.lookupByName(vm).jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                return False
            state = dst.lookupByName(vm).state()[0]
        except libvirt.libvirtError:
            return False
        return bool(state != libvirt.VIR_DOMAIN_RUNNING)

    def run(self, n: int, kinds: tuple[str, ...] = KINDS, first: int = 0) -> Tally:
        logger = logging.getLogger("ulm.executor")
        logger.addHandler(self.log)
        logger.setLevel(logging.INFO)
        try:
            self.prepare()
            if set(kinds) & set(fp.DAEMON_KINDS):
                self.watcher = fp.Watcher(self.lab, self.work)
            for k in range(first, first + n):
                rec = self.round(kinds[k % len(kinds)])
                self.tally.add_record(rec)
                if self.out is not None:
                    with self.out.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
        finally:
            logger.removeHandler(self.log)
            self.hv.close()
        return self.tally


@contextmanager
def lab_lock() -> Iterator[None]:
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lab_ready(lab: Lab) -> bool:
    return lab.is_up() and lab.n_hosts >= 3 and bool(lab.state().get("power"))  # BMCs


def read_table(path: Path) -> Tally:
    tally = Tally()
    try:
        text = path.read_text()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            tally.add_record(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"error: {path}:{n}: not a fault record ({exc})") from None
    return tally


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=10, help="faults per hold of the lab lock")
    ap.add_argument("--out", type=Path, help="append one JSON line per fault to this file")
    ap.add_argument("--table", type=Path, help="only print the table of this file")
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="start no new chunk after this many minutes (0: no limit)")
    args = ap.parse_args()
    if args.table is not None:
        print(read_table(args.table).table())
        return
    if args.faults < 1 or not 1 <= args.chunk <= 10:
        ap.error("--faults must be positive and --chunk between 1 and 10")
    logging.basicConfig(level=logging.ERROR)
    tally = Tally()
    done, took, t0 = 0, GUEST_MIB / 32, time.monotonic()
    while done < args.faults:
        if args.minutes and time.monotonic() - t0 > args.minutes * 60:
            break
        n = min(args.chunk, args.faults - done)
        with lab_lock():
            lab = Lab()
            if not lab_ready(lab):
                if lab.is_up():
                    lab.down()
                lab.up(3)
            campaign = Campaign(lab, args.seed + done, args.out)
            campaign.took = took
            try:
                part = campaign.run(n, first=done)
            finally:
                campaign.remove()
            took = campaign.took
        tally.merge(part)
        if done + n < args.faults:
            time.sleep(3.0)  # others waiting for the lab get it now: flock(2) is not fair
        done += n
    print(tally.table())
    print(f"wall time {time.monotonic() - t0:.0f} s for {done} faults (lock waits included)")


if __name__ == "__main__":
    main()
