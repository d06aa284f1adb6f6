"""Campaign faults that hit ULM itself or the things around it, not only libvirt.

Worker kinds run the plan in a separate ULM process (`fault_worker.py`, a real executor on a
real SQLite journal, in the controller namespace, with the lab's IPMI+WoL power drivers):
  ulm_kill         the process SIGKILLed mid-migration, then a new one runs `recover()`:
                   reported = a "recovered journal entry"/"recovery:" line naming the VM, an
                   outcome row for the move, and no journal entry left open;
  sigterm          SIGTERM mid-migration with a shutdown grace of 0-3 s: the process ends
                   within grace + abort grace + settle, the move has an outcome row (done, or
                   failed: aborted at the grace's end), no entry is left open, a failure is
                   logged naming the VM;
  bmc_silent_off   move the VM away, then power its source off; the source's BMC (ipmi_sim)
                   SIGSTOPped at a random moment of the migration: the power-off fails (or,
                   too late, succeeded) and says so in a line naming the host + an outcome row;
  bmc_silent_wake  the destination is off: wake it, then move the VM there; its BMC
                   SIGSTOPped at a random moment of the wake.
Daemon kinds hit the `ulm run --mode enforce` daemon that watches the lab during the chunk
(`Watcher`) while a campaign migration runs:
  munin_silent     the source's munin-node SIGSTOPped for ~4 stale periods: reported = the
                   daemon's "munin: HOST says nothing" and "HOST: its own figures are older"
                   warnings, then "fresh" again once resumed; no plan saved meanwhile;
  store_readonly   the daemon's store (db, WAL, dir) made immutable (`chattr +i`: root ignores
                   permission bits) for a few rounds: reported = the one-line "monitoring in
                   memory only, acting on nothing" error, then "takes writes again";
  store_full       the store's filesystem (64 MiB of ext4 of its own) filled up to the last
                   byte for a few rounds: reported = the same one-line error saying the disk
                   is full, then "takes writes again" once the filler is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ulm.lab.lab import Lab, exec_prefix
from ulm.lab.paths import host_name
from ulm.store import Store

WORKER_KINDS = ("ulm_kill", "sigterm", "bmc_silent_off", "bmc_silent_wake")
DAEMON_KINDS = ("munin_silent", "store_readonly", "store_full")
ROOT = Path(__file__).resolve().parent.parent
DISK_MIB = 64  # the watching daemon's store filesystem: a chunk's samples need a few MiB


def worker_argv(store: str, plan: list[list[Any]] | None, limits: dict[str, float]) -> list[str]:
    argv = [*exec_prefix(), sys.executable, "-m", "benchmarks.fault_worker", "--store", store,
            "--limits", json.dumps(limits)]
    return [*argv, "--plan", json.dumps(plan)] if plan is not None else [*argv, "--recover"]


class Worker:
    """One ULM worker process, its stderr in a file (read for the report lines)."""

    def __init__(self, argv: list[str], err: Path) -> None:
        self.err = err
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
        with err.open("w") as f:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=f, text=True,
                                         env=env, cwd=ROOT)
        self.plan_id = ""

    def started(self) -> str:
        """The plan id, once the worker saved the plan (its first stdout line)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.plan_id = json.loads(line).get("plan_id", "") if line.strip() else ""
        return self.plan_id

    def finish(self, timeout: float) -> tuple[bool, dict[str, Any]]:
        """(ended in time, its last JSON line); killed if it did not end in time."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return False, {}
        lines = [x for x in out.splitlines() if x.strip()]
        try:
            return True, json.loads(lines[-1]) if lines else {}
        except ValueError:
            return True, {}

    def lines(self) -> list[str]:
        return self.err.read_text(errors="replace").splitlines()


def journal_closed(url: str, plan_id: str) -> tuple[bool, list[dict[str, Any]]]:
    """(no journal entry left open, the plan's outcome rows)."""
    store = Store.open(url, mode="write")
    try:
        return not store.open_entries(), store.outcomes(plan_id) if plan_id else []
    finally:
        store.close()


def signal_file_pid(path: Path, sig: int) -> bool:
    try:
        os.kill(int(path.read_text().strip()), sig)
    except (OSError, ValueError):
        return False
    return True


def bmc_pid_file(lab: Lab, i: int) -> Path:
    return lab.paths.host(i) / "bmc.pid"


def munin_pid_file(lab: Lab, i: int) -> Path:
    return lab.paths.host(i) / "run" / "munin-node.pid"


POLICY = """name = "faults-watch"
[overload]
threshold = 0.99
sustain = 5
window = 5
"""


class Watcher:
    """`ulm run --mode enforce` watching the lab during a chunk, on a store of its own, with
    a policy that asks for nothing (the campaign makes the migrations): the daemon kinds
    check what it says and does when its munin or its store fail under it."""

    def __init__(self, lab: Lab, work: Path) -> None:
        self.dir = work / "store"
        self.dir.mkdir(parents=True, exist_ok=True)
        # A filesystem of its own, so that `store_full` fills the store's disk and no other:
        # ext4 on a loop device, not a tmpfs (tmpfs does not refuse a write through a
        # descriptor opened before `chattr +i`, and `store_readonly` relies on that).
        image = work / "store.img"
        with image.open("wb") as f:
            f.truncate(DISK_MIB * 2**20)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(self.dir)], check=True)
        self.filler = self.dir / "filler"
        self.url = f"sqlite:///{self.dir}/ulm.db"
        text = lab.config_toml().replace(f"sqlite:///{lab.paths.root}/ulm.db", self.url)
        # stale after 3 s; host figures from munin: without `source = "munin"` the daemon
        # never asks munin-node, and a stopped one goes unnoticed (its libvirt answers)
        text = text.replace("interval_s = 3", 'interval_s = 1\nsource = "munin"')
        (work / "policy.toml").write_text(POLICY)
        cfg = work / "ulm.toml"
        cfg.write_text('policy = "policy.toml"\n' + text)
        self.err = work / "daemon.err"
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}"}
        with self.err.open("w") as f:
            self.proc = subprocess.Popen(
                [*exec_prefix(), sys.executable, "-m", "ulm", "run", "-c", str(cfg), "--mode",
                 "enforce"], stdout=subprocess.DEVNULL, stderr=f, env=env, cwd=work)
        self.ready(300.0)

    def ready(self, timeout: float) -> bool:
        """Once its first round stored samples (the first one compiles the scheduler if no
        cache has it: a fault before that would hit a daemon that does not collect yet)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                with sqlite3.connect(f"file:{self.dir / 'ulm.db'}?mode=ro", uri=True) as c:
                    if c.execute("SELECT count(*) FROM samples").fetchone()[0]:
                        return True
            except sqlite3.Error:  # not created yet
                pass
            time.sleep(0.5)
        return False

    def mark(self) -> int:
        return len(self.lines())

    def lines(self, since: int = 0) -> list[str]:
        try:
            return self.err.read_text(errors="replace").splitlines()[since:]
        except OSError:
            return []

    def wait_for(self, since: int, match: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(match(x) for x in self.lines(since)):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.25)
        return any(match(x) for x in self.lines(since))

    def plans_since(self, t: float) -> int:
        store = Store.open(self.url, mode="read")
        try:
            return sum(1 for p in store.plans() if p.created_at >= t)
        finally:
            store.close()

    def store_files(self) -> list[Path]:
        # not the -shm file: SQLite maps it, and a write to an immutable mapping is SIGBUS
        return [p for p in (self.dir / "ulm.db", self.dir / "ulm.db-wal") if p.exists()]

    def immutable(self, on: bool) -> None:
        flag = "+i" if on else "-i"
        subprocess.run(["chattr", flag, *map(str, self.store_files()), str(self.dir)],
                       check=False, capture_output=True)

    def fill(self) -> None:
        """The store's disk full to the last byte (a write that fails ends the filler)."""
        with self.filler.open("wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()

    def unfill(self) -> None:
        self.filler.unlink(missing_ok=True)

    def stop(self) -> None:
        self.immutable(False)
        self.unfill()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["umount", "-l", str(self.dir)], check=False)


def host_index(name: str, n: int) -> int:
    return next(i for i in range(1, n + 1) if host_name(i) == name)


def said(lines: list[str], name: str, *words: str) -> bool:
    """A WARNING/ERROR line naming `name` and one of `words`."""
    return any(x.split(" ", 1)[0] in ("WARNING", "ERROR") and name in x
               and any(w in x for w in words) for x in lines)


def rows_reported(lines: list[str], rows: list[dict[str, Any]], n: int) -> bool:
    """Every action has its outcome row, and each failure a line naming its VM or host."""
    if len(rows) != n:
        return False
    for r in rows:
        if r["status"] == "failed":
            name = str(r.get("vm") or r.get("host") or "")
            if not said(lines, name, "fail", "abort", "cannot", "no answer", "interrupted"):
                return False
    return True
