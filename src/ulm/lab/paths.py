"""Where the lab keeps its state, and the names and addresses of its parts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NET = "10.77.0"
SUBNET = f"{NET}.0/24"
SWITCH = "labsw"
CONTROLLER = "labctl"
CONTROLLER_IP = f"{NET}.100"
REDFISH = "labrf"  # the Redfish BMC's namespace (`ulm lab up --redfish`)
MAX_HOSTS = 50


def host_name(i: int) -> str:
    return f"labh{i}"


def host_ip(i: int) -> str:
    return f"{NET}.{i}"


def host_index(name: str) -> int:
    if not name.startswith("labh") or not name[4:].isdigit():
        raise ValueError(f"{name!r} is not a lab host name (labh1, labh2, ...)")
    return int(name[4:])


@dataclass(frozen=True)
class LabPaths:
    root: Path  # state: per-host dirs, configs, pid files
    cache: Path  # guest kernel/initramfs, QEMU capability cache: survive `lab down`

    @classmethod
    def default(cls) -> LabPaths:
        return cls(Path(os.environ.get("ULM_LAB_DIR", "/var/lib/ulm-lab")),
                   Path(os.environ.get("ULM_LAB_CACHE", "/var/cache/ulm-lab")))

    def host(self, i: int) -> Path:
        return self.root / f"h{i}"

    def socket(self, i: int) -> Path:
        return self.host(i) / "run" / "libvirt" / "libvirt-sock"

    def unix_uri(self, i: int) -> str:
        """How the root namespace reaches a host: only through its unix socket."""
        return f"qemu+unix:///system?socket={self.socket(i)}"

    @staticmethod
    def tcp_uri(i: int) -> str:
        """How the controller namespace (and other hosts) reach a host."""
        return f"qemu+tcp://{host_ip(i)}/system"

    @property
    def guest(self) -> Path:
        return self.cache / "guest"

    @property
    def caps(self) -> Path:
        return self.cache / "qemu-caps"

    @property
    def state_file(self) -> Path:
        return self.root / "lab.json"
