"""The bogus-metrics guard: a host whose figures are beyond physics is quarantined, not acted on.

A host that suddenly reports 0 CPUs or 0 memory, a CPU above 100 % of its cores, more memory
used than it has, a VM busier than its vCPUs, or a size that jumps by a large factor between
rounds is broken at the source (an agent restarting, a unit mix-up, a counter wrap), not a
host that needs relief: acting on it would migrate every VM off it, or pile them onto it.
Pure: `check` reads one collection and the previous round's sizes; the daemon applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from ulm.collect.base import Collection, HostReading

if TYPE_CHECKING:
    from ulm.config import GuardConfig

#: Sources that report a host's size (munin leaves it 0 when its graph has no upper limit).
_SIZED = ("libvirt", "prometheus", "")


@dataclass(frozen=True, slots=True)
class Limits:
    """How far beyond physics a figure may go before it is disbelieved (fractions)."""

    cpu_tolerance: float = 0.10  # host CPU above (1 + this) x its cores; a VM above its vCPUs
    mem_tolerance: float = 0.05  # memory used above (1 + this) x the host's size
    capacity_jump: float = 2.0  # cores or memory changing by more than this factor


class BogusKind(Enum):
    NO_CPUS = "no-cpus"
    NO_MEMORY = "no-memory"
    CPU_OVER_CORES = "cpu-over-cores"
    MEM_OVER_SIZE = "mem-over-size"
    VM_CPU_OVER_VCPUS = "vm-cpu-over-vcpus"
    CAPACITY_JUMP = "capacity-jump"


@dataclass(frozen=True, slots=True)
class Bogus:
    """Why a host is quarantined: the figure it reported and the limit it broke."""

    kind: BogusKind
    host: str
    figure: float = 0.0
    limit: float = 0.0
    vm: str = ""
    what: str = ""  # for a capacity jump: "cores" or "memory"

    def __str__(self) -> str:
        k = self.kind
        if k is BogusKind.NO_CPUS:
            return "reported 0 CPUs"
        if k is BogusKind.NO_MEMORY:
            return "reported 0 MiB of memory"
        if k is BogusKind.CPU_OVER_CORES:
            return f"reported CPU {self.figure:.0%} of its cores (limit {self.limit:.0%})"
        if k is BogusKind.MEM_OVER_SIZE:
            return (f"reported {self.figure:.0f} MiB used of {self.limit:.0f} MiB "
                    "(more than it has)")
        if k is BogusKind.VM_CPU_OVER_VCPUS:
            return (f"reported VM {self.vm} busy on {self.figure:.2f} cores with "
                    f"{self.limit:g} vCPUs")
        return f"reported {self.what} changing by a factor of {self.figure:.1f} in one round"


@dataclass(frozen=True, slots=True)
class Size:
    cores: int
    mem_mib: float


@dataclass(frozen=True, slots=True)
class Verdict:
    bogus: Mapping[str, Bogus]  # host -> the first reason it is quarantined
    sizes: Mapping[tuple[str, str], Size]  # (source, host) -> size, for the next round


def check(col: Collection, previous: Mapping[tuple[str, str], Size],
          limits: Limits = Limits()) -> Verdict:
    """The hosts of `col` whose figures cannot be true, given the sizes of the last round."""
    bogus: dict[str, Bogus] = {}
    sizes = dict(previous)
    for h in col.hosts:
        if not h.ok:
            continue  # silent: nothing to disbelieve (the silent-host condition reports it)
        why = _host(h, previous.get((h.source, h.host)), limits)
        if why is not None:
            bogus.setdefault(h.host, why)
        if h.cores > 0 and h.mem_total_mib > 0:  # a zero is never the size to compare with
            sizes[(h.source, h.host)] = Size(h.cores, h.mem_total_mib)
    for v in col.vms:
        if v.cpu is not None and v.vcpus > 0 and v.cpu > v.vcpus * (1 + limits.cpu_tolerance):
            bogus.setdefault(v.host, Bogus(BogusKind.VM_CPU_OVER_VCPUS, v.host, v.cpu,
                                           float(v.vcpus), vm=v.vm))
    return Verdict(bogus, sizes)


def _host(h: HostReading, before: Size | None, limits: Limits) -> Bogus | None:
    sized = h.source in _SIZED
    if sized and h.cores <= 0:
        return Bogus(BogusKind.NO_CPUS, h.host)
    if sized and h.mem_total_mib <= 0:
        return Bogus(BogusKind.NO_MEMORY, h.host)
    # `cpu` is the busy fraction of the whole host: above 1 means more than all its cores
    if h.cpu is not None and h.cpu > 1 + limits.cpu_tolerance:
        return Bogus(BogusKind.CPU_OVER_CORES, h.host, h.cpu, 1 + limits.cpu_tolerance)
    if (h.mem_used_mib is not None and h.mem_total_mib > 0
            and h.mem_used_mib > h.mem_total_mib * (1 + limits.mem_tolerance)):
        return Bogus(BogusKind.MEM_OVER_SIZE, h.host, h.mem_used_mib, h.mem_total_mib)
    if before is not None and h.cores > 0 and h.mem_total_mib > 0:
        for what, old, new in (("cores", before.cores, h.cores),
                               ("memory", before.mem_mib, h.mem_total_mib)):
            factor = max(old, new) / min(old, new)
            if factor > limits.capacity_jump:
                return Bogus(BogusKind.CAPACITY_JUMP, h.host, factor, limits.capacity_jump,
                             what=what)
    return None


def withheld(col: Collection, verdict: Verdict,
             previous: Mapping[tuple[str, str], Size]) -> Collection:
    """`col` without the figures of quarantined hosts and their VMs, so that the store never
    records them: the host keeps its last believed size (as a silent host does) and says
    nothing about its load; its VMs stay listed (they are not gone), without figures."""
    if not verdict.bogus:
        return col
    hosts = []
    for h in col.hosts:
        if h.ok and h.host in verdict.bogus:
            size = previous.get((h.source, h.host), Size(h.cores, h.mem_total_mib))
            h = replace(h, cores=size.cores, mem_total_mib=size.mem_mib, cpu=None,
                        mem_used_mib=None, load=None, quarantine=str(verdict.bogus[h.host]))
        hosts.append(h)
    vms = tuple(replace(v, cpu=None, mem_used_mib=None) if v.host in verdict.bogus else v
                for v in col.vms)
    return Collection(col.ts, tuple(hosts), vms)


class Quarantine:
    """The guard between rounds: the sizes last seen and the hosts quarantined now."""

    def __init__(self, limits: Limits | None) -> None:
        self.limits = limits  # None: the guard is off
        self.sizes: Mapping[tuple[str, str], Size] = {}
        self.bogus: Mapping[str, Bogus] = {}

    @classmethod
    def of(cls, cfg: GuardConfig) -> Quarantine:
        """The guard `[collect.guard]` asks for."""
        return cls(Limits(cfg.cpu_tolerance, cfg.mem_tolerance, cfg.capacity_jump)
                   if cfg.enabled else None)

    def screen(self, col: Collection) -> Collection:
        """`col` as the store may take it; `bogus` says which hosts were withheld and why."""
        if self.limits is None:
            return col
        verdict = check(col, self.sizes, self.limits)
        out = withheld(col, verdict, self.sizes)
        self.sizes, self.bogus = verdict.sizes, verdict.bogus
        return out

    @property
    def why(self) -> dict[str, str]:
        return {h: str(b) for h, b in self.bogus.items()}

    def messages(self) -> dict[str, str]:
        return {h: f"{h}: quarantined: {b}: nothing decided for it until its figures are "
                   "believable again" for h, b in self.bogus.items()}
