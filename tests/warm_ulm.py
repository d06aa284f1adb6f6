"""`ulm` as a real process without paying its imports every time (~1.5-3 s of CPU a command).

One warm parent, started once per test session, imports the CLI exactly as `ulm.cli.main`
does and then forks a child per command. Each child is a process of its own: its own argv,
working directory, environment, stdout/stderr (files, read back afterwards), stdin from
/dev/null and exit code, running the same `main()` as the installed `ulm` script. What the
fork skips is only the import of modules a fresh process would import the same way.
`together(n, args)` forks `n` of them that start at the same instant (races on one store).

Not for commands whose environment changes what is imported (XDG_CACHE_HOME, NUMBA_*):
those spawn the real script.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# The server's side, run with `python -c`: its sys.path starts as the `ulm` script's
# does (the venv's bin), not with a directory of tests.
SERVER = r"""
import faulthandler, json, os, signal, sys, threading, time
sys.path[0] = os.path.dirname(sys.executable)
initial = dict(os.environ)  # before the imports (ulm.jit may set NUMBA_CACHE_DIR)
for key in ("COLUMNS", "LINES"):  # else rich's consoles, made at import, keep this size
    os.environ.pop(key, None)
from ulm.cli import _register, main
_register()
if threading.active_count() != 1:  # a fork would copy a process with threads in it
    raise SystemExit("warm ulm: threads started at import; cannot fork safely")
requests, replies = sys.stdin, sys.stdout
replies.write("ready\n")
replies.flush()
for line in requests:
    req = json.loads(line)
    if "reap" in req:  # the end of a command started with "go"
        _, status = os.waitpid(req["reap"], 0)
        replies.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()
        continue
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: becomes the command
        code = 1
        try:
            os.chdir(req["cwd"])
            for key in set(initial) | set(req["env"]):  # the caller's environment
                if key not in req["env"]:
                    os.environ.pop(key, None)
                elif initial.get(key) != req["env"][key]:
                    os.environ[key] = req["env"][key]
            for key in ("COLUMNS", "LINES"):  # the terminal's size: read when asked
                if key in req["env"]:
                    os.environ[key] = req["env"][key]
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(req["out"], os.O_WRONLY | os.O_TRUNC)
            err = os.open(req["err"], os.O_WRONLY | os.O_TRUNC)
            for fd, to in ((null, 0), (out, 1), (err, 2)):
                os.dup2(fd, to)
                os.close(fd)
            sys.argv = ["ulm", *req["args"]]
            if req.get("go"):  # ready, then wait to start at the same instant as others
                open(req["go"] + f".ready{os.getpid()}", "w").close()
                while not os.path.exists(req["go"]):
                    time.sleep(0.001)
            faulthandler.dump_traceback_later(req["timeout"], exit=False)  # why it hangs
            try:
                main()
                code = 0
            except SystemExit as e:  # what the interpreter makes of a SystemExit
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    replies.write(json.dumps({"pid": pid}) + "\n")
    replies.flush()
    if req.get("go"):
        continue  # reaped on request
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
    replies.flush()
"""


class WarmUlm:
    """The test side: one server process, one command at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="ulm-warm-"))

    def _server(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            # started where the tests run, as `ulm` would be: a relative PYTHONPATH holds
            self._proc = subprocess.Popen([sys.executable, "-c", SERVER],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True, bufsize=1)
            assert self._reply(self._proc, 300) == "ready", "warm ulm did not start"
        return self._proc

    def start(self) -> None:
        """Starts the server now, not at the first command: for a test that reads the wall
        clock just before a command (`tests/daemon/test_stale.py`)."""
        with self._lock:
            self._server()

    @staticmethod
    def _reply(proc: subprocess.Popen[str], timeout: float) -> str:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        return proc.stdout.readline().strip()

    def run(self, args: Sequence[str], *, timeout: float = 120, cwd: str | Path | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Like subprocess.run(["ulm", *args], capture_output=True, text=True)."""
        with self._lock:
            proc = self._server()
            out, err = self._dir / "out", self._dir / "err"
            out.write_bytes(b"")
            err.write_bytes(b"")
            req = {"args": list(args), "cwd": str(cwd or os.getcwd()),
                   "env": dict(os.environ if env is None else env),
                   "out": str(out), "err": str(err), "timeout": max(timeout - 2, 1)}
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            pid = json.loads(self._reply(proc, 60))["pid"]
            try:
                rc = json.loads(self._reply(proc, timeout))["rc"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._reply(proc, 60)
                raise subprocess.TimeoutExpired(["ulm", *args], timeout, out.read_text(),
                                                err.read_text()) from None
            return subprocess.CompletedProcess(["ulm", *args], rc, out.read_text(),
                                               err.read_text())

    def together(self, n: int, args: Sequence[str], *, timeout: float = 180,
                 ) -> list[subprocess.CompletedProcess[str]]:
        """`n` `ulm` processes that start the same command at the same instant."""
        with self._lock:
            proc = self._server()
            assert proc.stdin is not None
            go = self._dir / "go"
            go.unlink(missing_ok=True)
            pids, files = [], []
            for i in range(n):
                out, err = self._dir / f"out{i}", self._dir / f"err{i}"
                out.write_bytes(b"")
                err.write_bytes(b"")
                files.append((out, err))
                req = {"args": list(args), "cwd": os.getcwd(), "env": dict(os.environ),
                       "out": str(out), "err": str(err), "timeout": timeout, "go": str(go)}
                proc.stdin.write(json.dumps(req) + "\n")
                proc.stdin.flush()
                pids.append(json.loads(self._reply(proc, 60))["pid"])
            ready = [self._dir / f"go.ready{pid}" for pid in pids]
            deadline = time.monotonic() + 60
            while not all(r.exists() for r in ready):
                assert time.monotonic() < deadline, "the commands did not get ready"
                time.sleep(0.01)
            go.touch()
            done = []
            for pid, (out, err) in zip(pids, files, strict=True):
                proc.stdin.write(json.dumps({"reap": pid}) + "\n")
                proc.stdin.flush()
                rc = json.loads(self._reply(proc, timeout))["rc"]
                done.append(subprocess.CompletedProcess(["ulm", *args], rc, out.read_text(),
                                                        err.read_text()))
            for r in ready:
                r.unlink()
            go.unlink()
            return done

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(30)
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        for f in self._dir.iterdir():
            f.unlink()
        self._dir.rmdir()


_warm: WarmUlm | None = None


def warm_ulm() -> WarmUlm:
    """The session's warm `ulm` (started at first use; tests/conftest.py closes it)."""
    global _warm
    if _warm is None:
        _warm = WarmUlm()
    return _warm


def close() -> None:
    global _warm
    if _warm is not None:
        _warm.close()
        _warm = None
