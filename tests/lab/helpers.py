"""Helpers for tests on the real lab: run code inside the controller namespace, poll, run a
daemon (`ulm run`) there for the length of a `with`."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ulm.lab.lab import exec_prefix

ULM = str(Path(sys.executable).parent / "ulm")


@contextlib.contextmanager
def daemon(cfg: Path, *args: str, log: Path | None = None, stop: signal.Signals = signal.SIGTERM,
           wait_s: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    """`ulm run -c CFG ARGS...` in the controller namespace, its stderr in `log` (default: next
    to the config, daemon.err). Leaving the `with` sends `stop` (SIGTERM: a clean stop, which
    the caller may check in `returncode`) and waits; a daemon still there after `wait_s` is
    killed, so that no test leaves one behind."""
    log = log or cfg.parent / "daemon.err"
    with log.open("w") as err:  # the child keeps its own descriptor
        proc = subprocess.Popen([*exec_prefix(), ULM, "run", "-c", str(cfg), *args],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def in_controller(code: str, timeout: float = 120.0) -> Any:
    """Runs Python `code` inside labctl; its last line must print one JSON value."""
    out = subprocess.run([*exec_prefix(), sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def eventually(check: Callable[[], bool], timeout: float = 30.0, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return False


def node_cpu(conn: Any, seconds: float = 2.0) -> float:
    a = conn.getCPUStats(-1)
    time.sleep(seconds)
    b = conn.getCPUStats(-1)
    busy = (b["user"] + b["kernel"]) - (a["user"] + a["kernel"])
    return float(busy / (busy + b["idle"] - a["idle"]))
