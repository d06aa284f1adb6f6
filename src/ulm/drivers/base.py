"""The two driver protocols. They vary independently: a cluster has one hypervisor driver
(libvirt, or the in-memory `SimCluster`), each host has its own power driver (IPMI, Redfish,
Wake-on-LAN, ssh), and some power drivers can only do half the job (WoL wakes, ssh powers off).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ulm.model import VmState


class MigrationState(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"
    #: The job is gone and its result unknown (adopted after a restart): decide by observation.
    ENDED = "ended"


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


class DomainState(enum.StrEnum):
    """What libvirt says a domain is doing on one host (ULM's names for `virDomainState`)."""

    RUNNING = "running"
    PAUSED = "paused"
    #: Paused because post-copy failed: its memory is split between two hosts, and resuming
    #: it is never safe (libvirt's own rule), so ULM reports it and leaves it alone.
    POSTCOPY_FAILED = "paused (post-copy failed)"
    SHUTOFF = "shut off"
    CRASHED = "crashed"
    OTHER = "other"


def run_state(state: DomainState) -> VmState:
    """A domain's state as the snapshot keeps it. A domain libvirt calls neither running,
    paused nor stopped (blocked on I/O, being shut down) counts as running: it holds its
    host and nothing says an admin wants it left alone."""
    if state in (DomainState.PAUSED, DomainState.POSTCOPY_FAILED):
        return VmState.PAUSED
    if state is DomainState.CRASHED:
        return VmState.CRASHED
    if state is DomainState.SHUTOFF:
        return VmState.SHUTOFF
    return VmState.RUNNING


#: The states in which a domain occupies its host (it has a QEMU process there).
ACTIVE_STATES = frozenset({DomainState.RUNNING, DomainState.PAUSED,
                           DomainState.POSTCOPY_FAILED, DomainState.OTHER})


@runtime_checkable
class DomainControl(Protocol):
    """What a hypervisor driver can also do beyond `Hypervisor`: domain states, resuming a
    domain a failed migration left paused, and finding a migration started before a restart.
    Drivers without it (a power-only test double) are treated as "active = running"."""

    def states(self, vm: str) -> dict[str, DomainState]:
        """Every host that knows the domain, with its state there (unreachable hosts left out)."""
        ...

    def resume(self, vm: str, host: str) -> None: ...

    def adopt(self, vm: str, src: str, dst: str) -> str | None:
        """A handle on a migration of `vm` from `src` still running (started by an earlier
        ULM process), or None if there is none."""
        ...


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
