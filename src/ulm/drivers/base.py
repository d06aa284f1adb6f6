"""The two driver protocols. They vary independently: a cluster has one hypervisor driver
(libvirt, or the in-memory `SimCluster`), each host has its own power driver (IPMI, Redfish,
Wake-on-LAN, ssh), and some power drivers can only do half the job (WoL wakes, ssh powers off).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class MigrationState(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    state: MigrationState
    progress: float = 0.0  # 0..1 of memory transferred, best effort
    error: str = ""
    mem_remaining_mib: float = 0.0


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    bandwidth_mib_s: float | None = None  # None: unlimited
    auto_converge: bool = False
    deadline_s: float = 600.0  # abort the job when it runs longer


class Hypervisor(Protocol):
    """Inventory and live migration for one cluster."""

    def locate(self, vm: str) -> list[str]:
        """Hosts on which the VM is active now (exactly one when all is well; two while a
        migration is in flight: running on the source, paused on the destination)."""
        ...

    def list_vms(self, host: str) -> list[str]:
        """Names of the VMs active on the host."""
        ...

    def start_migration(self, vm: str, src: str, dst: str, options: MigrationOptions) -> str:
        """Starts a live migration and returns a job handle."""
        ...

    def poll(self, job: str) -> MigrationStatus: ...

    def abort(self, job: str) -> None: ...


class PowerState(enum.StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


class PowerMeter(Protocol):
    """A power driver whose BMC also meters the host's draw (a sensor in watts)."""

    def reading_w(self) -> float | None: ...


class Power(Protocol):
    """Power control of one host. Drivers that cannot do an operation raise NotImplementedError."""

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def state(self) -> PowerState: ...
