"""How far past its deadline an aborted live migration's outcome lands, on the real lab, and
whose time it is: the abort's delay, libvirt's own cancel, and ULM's part after the call ends.

    .venv/bin/python benchmarks/deadline_lab.py [--runs 6] [--deadline 3]

Takes /tmp/ulm-lab.lock itself (do not wrap it in `flock`); brings the lab up if it is not.
A 256 MiB guest dirtying 64 MiB is migrated labh1 -> labh2 at 2 MiB/s, which cannot finish,
with `poll_s = 2.5` (polls far apart, as the lab test does). Runs alternate the old settings
(`ABORT_POLL_S` 0.2 s, progress read from libvirt while the cancel runs) and the new ones
(0.05 s, an aborted job polled from the driver's flag), so that the load of the shared machine
hits both alike; the table gives each run and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.faults import lab_lock, lab_ready

from ulm.clock import WallClock
from ulm.drivers import libvirt as driver
from ulm.drivers.base import MigrationState, MigrationStatus
from ulm.execute import migrate
from ulm.executor import Executor, Limits, MemoryJournal
from ulm.lab.lab import Lab
from ulm.lab.paths import LabPaths
from ulm.model import Move, Plan

VM = "deadl1"
NEW_POLL = migrate.ABORT_POLL_S


def old_poll(self: driver.LibvirtHypervisor, job_id: str) -> MigrationStatus:
    """The driver's poll before: the job's progress read from libvirt even while cancelling."""
    job = self._jobs[job_id]
    with job.lock:
        done, error, aborted, detached = job.done, job.error, job.aborted, job.detached
    if detached:
        return self._poll_source(job_id, job)
    if done:
        self._jobs.pop(job_id, None)
        if not error:
            return MigrationStatus(MigrationState.COMPLETED, 1.0)
        state = MigrationState.ABORTED if aborted else MigrationState.FAILED
        return MigrationStatus(state, error=error)
    return MigrationStatus(MigrationState.RUNNING, *self._progress(job))


class Timed(driver.LibvirtHypervisor):
    """The real driver, noting when the abort went out and when the migrate call returned."""

    old = False
    abort_at = 0.0
    call_end = 0.0

    def poll(self, job_id: str) -> MigrationStatus:
        return old_poll(self, job_id) if self.old else super().poll(job_id)

    def abort(self, job_id: str) -> None:
        self.abort_at = time.time()
        super().abort(job_id)

    def _run(self, job: Any, options: Any) -> None:
        try:
            super()._run(job, options)
        finally:
            self.call_end = time.time()


def one(hv: Timed, deadline: float) -> dict[str, float]:
    limits = Limits(poll_s=2.5, deadline_s=deadline, bandwidth_mib_s=2)
    plan = Plan("snap", "pol", 0.0, (Move(VM, "labh1", "labh2", "deadline"),))
    o = Executor(hv, WallClock(), MemoryJournal(), limits).execute(plan, "d").outcomes[0]
    assert "deadline" in o.detail and f"{VM} still runs on labh1" in o.detail, o.detail
    due = o.started_at + deadline
    return {"overshoot": o.finished_at - due, "abort_late": hv.abort_at - due,
            "cancel": hv.call_end - hv.abort_at, "ours_after": o.finished_at - hv.call_end}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--deadline", type=float, default=3.0)
    args = ap.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with lab_lock():
        lab = Lab()
        if not lab_ready(lab):  # as the fault campaign leaves it: 3 hosts with BMCs
            if lab.is_up():
                lab.down()
            lab.up(3)
        lab.vm_add(VM, "labh1", 256, "linux", dirty_mib=64)
        time.sleep(3)  # the guest boots and dirties memory
        n = lab.n_hosts
        hv = Timed({f"labh{i}": lab.paths.unix_uri(i) for i in range(1, n + 1)},
                   {f"labh{i}": LabPaths.tcp_uri(i) for i in range(1, n + 1)})
        try:
            for k in range(args.runs):
                variant = "old" if k % 2 == 0 else "new"
                hv.old = variant == "old"
                migrate.ABORT_POLL_S = 0.2 if hv.old else NEW_POLL  # type: ignore[misc]
                r = one(hv, args.deadline)
                rows[variant].append(r)
                print(f"{variant}: " + "  ".join(f"{k} {v:5.2f} s" for k, v in r.items()),
                      flush=True)
        finally:
            migrate.ABORT_POLL_S = NEW_POLL  # type: ignore[misc]
            hv.close()
            lab.vm_rm(VM)
    print("\n| settings | runs | overshoot | abort late | libvirt cancel | ULM after the call |")
    print("|---|---|---|---|---|---|")
    for variant, rs in rows.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]} if rs else {}
        print(f"| {variant} | {len(rs)} | " + " | ".join(
            f"{med[k]:.2f} s" for k in ("overshoot", "abort_late", "cancel", "ours_after"))
            + " |")


if __name__ == "__main__":
    main()
