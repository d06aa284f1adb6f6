"""One fault of the kinds `fault_procs.py` describes: how each is injected and what counts as
reported. `Campaign.round` (faults.py) does the ground truth around it, for every kind."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import fault_procs as fp

from ulm.lab import hosts
from ulm.store import Store

LIMITS = {"poll_s": 0.2, "deadline_s": 40.0, "bandwidth_mib_s": 32, "abort_grace_s": 15.0,
          "settle_s": 10.0, "stall_s": 5.0, "power_timeout_s": 15.0, "power_stagger_s": 0.0}


class ProcRounds:
    """Mixed into `Campaign`: needs its lab, rng, names, work dir, watcher and `_inject`."""

    lab: Any
    rng: Any
    names: list[str]
    work: Path
    watcher: fp.Watcher | None
    _inject: Callable[..., None]

    def worker_round(self, kind: str, vm: str, src: str, dst: str,
                     rec: dict[str, Any]) -> tuple[str, bool]:
        """(the move's status, reported) for a worker kind; fills at_s/injected/missed."""
        s, d = self.names.index(src) + 1, self.names.index(dst) + 1
        n = len(list(self.work.glob("w*.db")))
        url = f"sqlite:///{self.work}/w{n}.db"
        template = self.work / "template.db"
        if not template.exists():  # the schema once: a copy per fault skips the migrations
            Store.open(f"sqlite:///{template}", mode="create").close()
        shutil.copy(template, self.work / f"w{n}.db")
        move = ["move", {"vm": vm, "src": src, "dst": dst, "reason": kind, "mem_mib": 0.0}]
        plan: list[list[Any]] = [move]
        limits = dict(LIMITS)
        if kind == "bmc_silent_off":
            plan = [move, ["power_off", {"host": src, "reason": kind}]]
        elif kind == "bmc_silent_wake":
            hosts.power_off(self.lab.paths, d)
            plan = [["power_on", {"host": dst, "reason": kind}], move]
        elif kind == "sigterm":
            limits["shutdown_grace_s"] = round(self.rng.uniform(0.0, 3.0), 1)
        w = fp.Worker(fp.worker_argv(url, plan, limits), self.work / f"w{n}.err")
        plan_id = w.started()
        shot: dict[str, float] = {}
        stopped: list[int] = []
        if kind == "ulm_kill":
            def fault() -> None:
                w.proc.send_signal(signal.SIGKILL)
        elif kind == "sigterm":
            def fault() -> None:
                shot["term"] = time.monotonic()
                w.proc.send_signal(signal.SIGTERM)
        elif kind == "bmc_silent_off":
            def fault() -> None:
                if fp.signal_file_pid(fp.bmc_pid_file(self.lab, s), signal.SIGSTOP):
                    stopped.append(s)
        else:
            def fault() -> None:
                if fp.signal_file_pid(fp.bmc_pid_file(self.lab, d), signal.SIGSTOP):
                    stopped.append(d)
        if kind == "bmc_silent_wake":
            thread = threading.Thread(target=self._inject_wake, args=(fault, d, shot))
        else:
            thread = threading.Thread(target=self._inject, args=(fault, vm, s, d, shot))
        thread.start()
        thread.join()
        bound = 40.0 + 15 + 10 + 2 * 15 + 30  # deadline + abort grace + settle + power + slack
        if kind == "sigterm" and "term" in shot:
            bound = limits["shutdown_grace_s"] + 15 + 10 + 15
        ended, result = w.finish(bound)
        for i in stopped:  # the BMC answers again: the admin's part
            fp.signal_file_pid(fp.bmc_pid_file(self.lab, i), signal.SIGCONT)
        lines = w.lines()
        if "at" in shot:
            rec["injected"] = 1
        else:
            rec["missed"] = 1
        rec["at_s"] = round(shot.get("at", -1), 2)
        if kind == "ulm_kill" and "at" in shot:  # the restart: a new process recovers
            r = fp.Worker(fp.worker_argv(url, None, LIMITS), self.work / f"w{n}-recover.err")
            ended, result = r.finish(bound)
            lines = r.lines()
            rec["recovered"] = result.get("outcomes", [])
        closed, rows = fp.journal_closed(url, plan_id)
        moves = [r for r in rows if r["kind"] == "move"]
        status = moves[0]["status"] if moves else "none"
        rec["detail"] = "; ".join(f"{r['kind']} {r['status']}: {r['detail']}" for r in rows)
        reported = ended and closed and fp.rows_reported(lines, rows, len(plan))
        if kind == "ulm_kill" and "at" in shot:
            reported = reported and fp.said(lines, vm, "recovered journal entry", "recovery:")
        if any(r["status"] == "failed" for r in rows):
            rec["failed"] = 1
        return status, reported

    def _inject_wake(self, fault: Callable[[], None], d: int, shot: dict[str, float]) -> None:
        """A random moment of the wake (it takes ~0.5-2 s here), if the host is not up yet."""
        shot["job"] = time.monotonic()
        time.sleep(self.rng.uniform(0.0, 1.5))
        if not hosts.is_on(self.lab.paths, d):
            shot["at"] = time.monotonic() - shot["job"]
            fault()

    # -- daemon kinds: the fault hits the watching daemon, the migration runs beside it -----------

    def daemon_fault(self, kind: str, src: str) -> tuple[Callable[[], None], Callable[[], bool]]:
        """(inject, reported-after): the fault, and the check run once the migration ended."""
        w = self.watcher
        assert w is not None
        s = self.names.index(src) + 1
        state: dict[str, Any] = {}

        if kind == "munin_silent":
            def inject() -> None:
                state.update(mark=w.mark(), t=time.time())
                fp.signal_file_pid(fp.munin_pid_file(self.lab, s), signal.SIGSTOP)
                state["stopped"] = True

            def check() -> bool:
                if not state.get("stopped"):
                    return True
                ok = w.wait_for(state["mark"], lambda x: f"munin: {src} says nothing" in x, 45)
                stale = w.wait_for(
                    state["mark"], lambda x: f"{src}: its own figures are older" in x, 15)
                fp.signal_file_pid(fp.munin_pid_file(self.lab, s), signal.SIGCONT)
                back = w.wait_for(state["mark"], lambda x: f"munin: {src} answers again" in x,
                                  30)
                return ok and stale and back and w.plans_since(state["t"]) == 0
        else:
            full = kind == "store_full"

            def inject() -> None:
                state.update(mark=w.mark(), t=time.time())
                if full:
                    w.fill()
                else:
                    w.immutable(True)
                state["stopped"] = True

            def check() -> bool:
                if not state.get("stopped"):
                    return True
                # a full disk must be named as such ("database or disk is full")
                ok = w.wait_for(state["mark"], lambda x: "acting on nothing until it takes "
                                "writes again" in x and (not full or "full" in x), 20)
                if full:
                    w.unfill()
                else:
                    w.immutable(False)
                back = w.wait_for(state["mark"], lambda x: "takes writes again: acting again"
                                  in x, 20)
                return ok and back and w.plans_since(state["t"]) == 0
        return inject, check
