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

from ulm.collect.domain_xml import NS
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


def set_label(name: str, key: str, value: str) -> None:
    """Labels the guest `name` on labh1 the way an operator would (`virsh metadata ... --live`):
    ULM's metadata element, set on the running domain through labh1's libvirtd."""
    assert in_controller(
        "import json, libvirt\n"
        f"d = libvirt.open('qemu+tcp://10.77.0.1/system').lookupByName('{name}')\n"
        "d.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,\n"
        f"    '<labels><label name=\"{key}\">{value}</label></labels>', 'ulm',\n"
        f"    '{NS}', libvirt.VIR_DOMAIN_AFFECT_LIVE)\n"
        "print(json.dumps(True))")
