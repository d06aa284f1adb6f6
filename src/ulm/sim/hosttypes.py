"""The simulated hardware: CloudSim's PlanetLab set-up (Beloglazov & Buyya, CCPE 2012).

800 hosts, even ids HP ProLiant ML110 G4 (2 x 1860 MIPS), odd ids ML110 G5 (2 x 2660 MIPS),
4096 MB RAM and 1 Gbit/s each, SPECpower curves; four VM types of one vCPU, assigned by
contiguous quarters of the VM list. Units: CPU in MIPS, memory in MB (the scheduler's MiB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ulm.arrays import F64, I64
from ulm.model import PowerCurve

G4 = PowerCurve("hp-ml110-g4-xeon3040",
                (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0))
G5 = PowerCurve("hp-ml110-g5-xeon3075",
                (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0))


@dataclass(frozen=True, slots=True)
class HostType:
    name: str
    cores: int
    core_mips: float
    ram_mb: float
    bw_mbit: float
    curve: PowerCurve

    @property
    def mips(self) -> float:
        return self.cores * self.core_mips


HP_G4 = HostType("HP ML110 G4", 2, 1860.0, 4096.0, 1000.0, G4)
HP_G5 = HostType("HP ML110 G5", 2, 2660.0, 4096.0, 1000.0, G5)

VM_MIPS = (2500.0, 2000.0, 1000.0, 500.0)
VM_RAM_MB = (870.0, 1740.0, 1740.0, 613.0)
VM_BW_MBIT = 100.0


@dataclass(frozen=True, eq=False)
class Hosts:
    """The host columns of the simulated cluster (index = host id)."""

    types: tuple[HostType, ...]
    kind: I64  # per host: index into `types`

    @classmethod
    def cloudsim(cls, n: int = 800) -> Hosts:
        """CloudSim's alternation: host i is a G4 if i is even, a G5 if odd."""
        return cls((HP_G4, HP_G5), np.arange(n, dtype=np.int64) % 2)

    @property
    def n(self) -> int:
        return len(self.kind)

    def column(self, attr: str) -> F64:
        values = np.array([float(getattr(t, attr)) for t in self.types])
        return np.asarray(values[self.kind])

    @property
    def mips(self) -> F64:
        return self.column("mips")

    @property
    def core_mips(self) -> F64:
        return self.column("core_mips")

    @property
    def ram(self) -> F64:
        return self.column("ram_mb")

    @property
    def cores(self) -> I64:
        return np.array([t.cores for t in self.types], np.int64)[self.kind]

    @property
    def curves(self) -> tuple[PowerCurve, ...]:
        return tuple(t.curve for t in self.types)

    def names(self) -> tuple[str, ...]:
        return tuple(f"host{i:04d}" for i in range(self.n))


def vm_types(n_vms: int) -> I64:
    """CloudSim's block-wise assignment: VM i gets type i // ceil(n / 4)."""
    block = max(math.ceil(n_vms / 4), 1)
    return np.asarray(np.arange(n_vms, dtype=np.int64) // block)


def vm_mips(n_vms: int) -> F64:
    return np.asarray(np.array(VM_MIPS)[vm_types(n_vms)])


def vm_ram(n_vms: int) -> F64:
    return np.asarray(np.array(VM_RAM_MB)[vm_types(n_vms)])


def parse_hosts(spec: str) -> Hosts:
    """`--hosts`: a count of CloudSim hosts (`800`), or `g4:N,g5:M` (G4s first, then G5s),
    from 1 to `MAX_HOSTS` in all: each round scans every host, so the count is the work."""
    from ulm.inputs import BadInput
    from ulm.numbers import MAX_HOSTS

    def count(text: str) -> int:
        # Digits only, and few of them: `int()` of a 5,000-digit string is itself an error.
        text = text.strip()
        if not text.isdigit() or not text.isascii():
            raise BadInput("--hosts", f"{spec[:60]!r}: expected a number or g4:N,g5:M")
        n = int(text) if len(text) <= 12 else MAX_HOSTS + 1
        if n > MAX_HOSTS:
            raise BadInput("--hosts", f"{spec[:60]!r}: at most {MAX_HOSTS:,} hosts",
                           kind="too_large")
        return n

    spec = spec.strip()
    if ":" not in spec and "," not in spec:
        n = count(spec)
        if n < 1:
            raise BadInput("--hosts", "must be at least 1")
        return Hosts.cloudsim(n)
    table = {"g4": 0, "g5": 1}
    order: list[int] = []
    for part in spec.split(","):
        name, _, text = part.partition(":")
        kind = table.get(name.strip().lower())
        if kind is None:
            raise BadInput("--hosts", f"{spec[:60]!r}: expected a number or g4:N,g5:M")
        order += [kind] * count(text)
        if len(order) > MAX_HOSTS:
            raise BadInput("--hosts", f"{spec[:60]!r}: at most {MAX_HOSTS:,} hosts",
                           kind="too_large")
    if not order:
        raise BadInput("--hosts", f"{spec[:60]!r}: no hosts")
    return Hosts((HP_G4, HP_G5), np.array(order, np.int64))
