"""Real guest CPU load on demand: "burn N" to each linux guest's control port.

A lab linux guest has a second serial port (ttyS1) whose other end is a unix socket on its host
(`ulm.lab.guest.CONSOLE_DIR`, under the host's /etc/libvirt, which the root namespace sees as
`h<I>/etc-libvirt`); the guest's init reads "burn N" lines from it and runs N busy loops
(`ulm.lab.initramfs`). The load is the guests' own: libvirt's per-domain CPU time, the host's
cgroup and so its /proc/stat (`ulm.lab.fakeload`, `auto`) all see it, and a VM that migrates
takes its load with it — unlike a forced figure (`ulm lab load HOST 90`), which stays on the host.
"""

from __future__ import annotations

import socket
from pathlib import Path

from ulm.errors import UlmError
from ulm.lab.paths import LabPaths, host_name


def console_dir(paths: LabPaths, i: int) -> Path:
    """Host i's control-port directory, as the root namespace sees it."""
    return paths.host(i) / "etc-libvirt" / "lab-console"


def prepare(paths: LabPaths, n: int) -> None:
    """Every host needs the directory before a guest starts there (or migrates there)."""
    for i in range(1, n + 1):
        console_dir(paths, i).mkdir(parents=True, exist_ok=True)


def send(paths: LabPaths, i: int, vm: str, line: str, timeout_s: float = 5.0) -> None:
    path = console_dir(paths, i) / f"{vm}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect(str(path))
            s.sendall(line.encode() + b"\n")
        except OSError as exc:
            raise UlmError(f"{vm} on {host_name(i)}: no control port ({exc.strerror}); "
                           "only linux guests added by this version have one") from None


def burn(paths: LabPaths, i: int, vms: list[str], loops: int) -> list[str]:
    """Tells each guest to run `loops` busy loops (0: stop); the guests told."""
    if loops < 0 or loops > 64:
        raise UlmError(f"--burn must be between 0 and 64 busy loops per guest (got {loops})")
    told = []
    for vm in vms:
        send(paths, i, vm, f"burn {loops}")
        told.append(vm)
    return told
