"""What a metrics source reports. Missing data is explicit (`None`, `error`), never a guess."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ulm.model import VmState


@dataclass(frozen=True, slots=True)
class HostReading:
    host: str
    ts: float
    ok: bool
    error: str = ""  # why the host said nothing (unreachable, timeout, protocol error)
    cores: int = 0
    mem_total_mib: float = 0.0
    cpu: float | None = None  # busy fraction of the whole host since the last reading
    mem_used_mib: float | None = None
    load: float | None = None
    source: str = ""
    #: Why the bogus-metrics guard withheld its figures ("" = believed; `ulm.collect.guard`):
    #: stored with the host, so that other processes see the quarantine too.
    quarantine: str = ""
    #: libvirt's host CPU (`ulm.collect.cpu.host_cpu`); None: this source does not read it
    #: (the stored one stays)
    cpu_model: str | None = None
    cpu_features: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class VMReading:
    vm: str
    host: str
    ts: float
    vcpus: int
    mem_mib: float  # what it was given
    cpu: float | None = None  # cores busy since the last reading; None on first sight
    mem_used_mib: float | None = None
    uuid: str = ""
    state: VmState = VmState.RUNNING  # what libvirt says its CPUs do
    #: From its domain XML (metadata labels, `<cpu>` required features); None: this source
    #: does not read them (the stored ones stay)
    labels: Mapping[str, str] | None = None
    cpu_features: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Collection:
    ts: float
    hosts: tuple[HostReading, ...]
    vms: tuple[VMReading, ...] = field(default_factory=tuple)

    @property
    def silent(self) -> list[HostReading]:
        return [h for h in self.hosts if not h.ok]


class MetricsSource(Protocol):
    """Reads hosts (and, where the source can, their VMs) once."""

    name: str

    def collect(self, now: float) -> Collection: ...
