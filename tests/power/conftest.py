"""Shared by the power tests: real endpoints on 127.0.0.1 only, and the executor that drives
them (its journal and its state polling with a deadline are what production uses).

A missing binary FAILS the test with the package to install (CI runs scripts/setup.sh);
`ULM_SKIP_POWER=1` is the only way to skip this directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from ulm.clock import WallClock
from ulm.drivers.base import MigrationOptions, MigrationStatus, Power
from ulm.executor import Executor, Limits, MemoryJournal, Outcome
from ulm.model import Plan, PowerOff, PowerOn

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("ULM_SKIP_POWER") != "1":
        return
    skip = pytest.mark.skip(reason="ULM_SKIP_POWER=1")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def need(binary: str, package: str) -> str:
    """The binary's path, or a failing test that says what to install."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{binary} is missing: install the Debian package {package} "
                    "(bash scripts/setup.sh --dev), or set ULM_SKIP_POWER=1")
    return path


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(ready: object, seconds: float = 20.0) -> None:
    """Polls `ready()` until it is true; fails the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"not ready within {seconds:g} s: {ready}")


class EmptyHosts:
    """The hypervisor side of the executor: every host is empty, so power-off is allowed."""

    def list_vms(self, host: str) -> list[str]:
        return []

    def locate(self, vm: str) -> list[str]:
        return []

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        raise AssertionError("no migration in a power test")

    def poll(self, job: str) -> MigrationStatus:
        raise AssertionError("no migration in a power test")

    def abort(self, job: str) -> None:
        raise AssertionError("no migration in a power test")


def run_power(driver: Power, on: bool, timeout_s: float = 20.0,
              journal: MemoryJournal | None = None) -> Outcome:
    """Powers host `h1` on or off through the real executor (journaled, state polled with
    `timeout_s` as the deadline) and returns the outcome."""
    limits = Limits(poll_s=0.1, power_timeout_s=timeout_s)
    ex = Executor(EmptyHosts(), WallClock(), journal or MemoryJournal(), limits,
                  power={"h1": driver})
    action = PowerOn("h1", "test") if on else PowerOff("h1", "test")
    return ex.execute(Plan("snap", "pol", 0.0, (action,)), "p-power").outcomes[0]
