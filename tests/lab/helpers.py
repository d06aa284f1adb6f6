"""Helpers for tests on the real lab: run code inside the controller namespace, poll."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from ulm.lab.lab import exec_prefix


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
