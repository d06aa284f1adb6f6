"""The nouns of ULM: resources, hosts, VMs, snapshots, actions and plans.

Everything here is immutable data. A `Snapshot` is stored column-wise (numpy arrays, see
`ulm.frame`) because the scheduler must plan for 50,000 VMs in seconds and the simulator must run
a day of 288 rounds in about a second; `Host` and `VM` objects are built from the columns on
demand, for humans, JSON and tests.

Units: CPU in "cpu units" (one fully busy core of the host's speed class = that host's per-core
capacity; the simulator uses MIPS, the libvirt driver uses cores), memory in MiB. Loads and
thresholds are fractions in [0, 1]; only the CLI formats percentages.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ulm.problems import Problem, as_data


class HostState(enum.StrEnum):
    ON = "on"
    OFF = "off"
    WAKING = "waking"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


class VmState(enum.StrEnum):
    """What a VM's CPUs are doing where it is listed (libvirt's domain state, in ULM's words).

    Only a running VM is ever moved: a paused or crashed one is someone's business (an admin
    pausing it, a guest that crashed and was kept for a dump); moving it would change what
    they are looking at. A shut-off domain occupies nothing and is not listed at all (it
    ends as `gone`); the state exists for a domain read while it stops."""

    RUNNING = "running"
    PAUSED = "paused"
    CRASHED = "crashed"
    SHUTOFF = "shut off"


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of CPU (cpu units) and memory (MiB)."""

    cpu: float = 0.0
    mem_mib: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.mem_mib + other.mem_mib)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.mem_mib - other.mem_mib)



@dataclass(frozen=True, slots=True)
class PowerCurve:
    """Watts drawn at 0 %, 10 %, ... 100 % CPU; linear in between (SPECpower style)."""

    name: str
    watts: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.watts) < 2:
            raise ValueError(f"power curve {self.name!r} needs at least 2 points")

    @classmethod
    def linear(cls, name: str, idle_w: float, max_w: float) -> PowerCurve:
        return cls(name, (idle_w, max_w))


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    capacity: Resources
    state: HostState = HostState.ON
    cores: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)
    power: str = ""  # name of a PowerCurve in the snapshot; "" = unknown
    #: CPU figure measured on the host itself (fraction), newest last; empty = not measured.
    #: When present it wins over the sum of its VMs (it includes the hypervisor's own work).
    cpu_history: tuple[float, ...] = ()
    #: Power bookkeeping, for the power-off rules (settle time, minimum on-time, cycle budget).
    empty_since: float | None = None  # it has run no VM since then (None: it runs VMs)
    on_since: float | None = None  # when it last came on (None: unknown, long ago)
    power_cycles_24h: int = 0  # power-offs in the last 24 hours
    #: Its own figures (`cpu_history`) are older than the staleness limit: the last known
    #: ones, shown but never decided on (the host is neither a source nor a destination).
    stale: bool = False
    cpu_model: str = ""  # libvirt's host CPU model ("" = unknown)
    cpu_features: frozenset[str] = frozenset()  # its CPU features (empty: unknown, no check)

    @property
    def core_cpu(self) -> float:
        return self.capacity.cpu / max(self.cores, 1)


@dataclass(frozen=True, slots=True)
class VM:
    name: str
    host: str
    size: Resources  # what it was given: vCPUs x host core speed, RAM
    load: Resources  # what it uses now (from the metric window)
    vcpus: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)
    migratable: bool = True
    #: CPU demand history in cpu units, oldest first, newest (= load.cpu) last.
    history: tuple[float, ...] = ()
    stale: bool = False  # no fresh metrics: the load is the last known one, not a guess
    migrating_to: str = ""  # a migration of this VM is in flight towards that host
    last_moved_at: float | None = None  # seconds (epoch or sim clock) of its last migration
    backoff_until: float | None = None  # a failed migration: not moved again before then
    #: No reachable host has listed it for the staleness limit: it is down (its host crashed,
    #: or it was destroyed). Always stale too.
    gone: bool = False
    #: Its migrations ULM started today before the snapshot, and how long its last one took
    #: (s; None: unknown): the anti-thrash gates (`ulm.scheduler.gates`).
    moves_today: int = 0
    last_move_s: float | None = None
    #: The CPU features its domain definition requires (empty: unknown, no check).
    cpu_features: frozenset[str] = frozenset()
    #: Destinations it backs off from after failed moves there: host -> until.
    dest_backoff: Mapping[str, float] = field(default_factory=dict)
    state: VmState = VmState.RUNNING


@dataclass(frozen=True, slots=True)
class Move:
    vm: str
    src: str
    dst: str
    reason: str
    mem_mib: float = 0.0

    kind: str = "move"


@dataclass(frozen=True, slots=True)
class PowerOff:
    host: str
    reason: str

    kind: str = "power_off"


@dataclass(frozen=True, slots=True)
class PowerOn:
    host: str
    reason: str

    kind: str = "power_on"


Action = Move | PowerOff | PowerOn


@dataclass(frozen=True, slots=True)
class Decision:
    """Why the scheduler did (or did not do) something with one VM: the explain table's row."""

    vm: str
    host: str
    trigger: str
    outcome: str  # "moved to h3", "kept: no host fits", ...
    rejections: Mapping[str, int] = field(default_factory=dict)  # reason -> hosts rejected
    top_scores: tuple[tuple[str, float], ...] = ()  # best candidates (host, score), best first


@dataclass(frozen=True, slots=True)
class Efficacy:
    """What the plan buys."""

    hosts_overloaded_before: int = 0
    hosts_overloaded_after: int = 0
    hosts_freed: int = 0
    peak_cpu_before: float = 0.0
    peak_cpu_after: float = 0.0
    mem_to_move_mib: float = 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    snapshot_id: str
    policy_digest: str
    created_at: float
    actions: tuple[Action, ...]
    decisions: tuple[Decision, ...] = ()
    problems: tuple[str, ...] = ()  # `issues` rendered: what the CLI, API and store show
    efficacy: Efficacy = field(default_factory=Efficacy)
    issues: tuple[Problem, ...] = ()  # the problems as data (empty in a plan read back)
    #: the figures of the hosts and VMs its moves touch, from its snapshot
    #: (`ulm.planview.loads_of`: the daemon adds them before it stores the plan)
    loads: Mapping[str, Any] | None = None

    @property
    def moves(self) -> tuple[Move, ...]:
        return tuple(a for a in self.actions if isinstance(a, Move))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "snapshot_id": self.snapshot_id,
            "policy_digest": self.policy_digest,
            "created_at": self.created_at,
            "actions": [asdict(a) for a in self.actions],
            "decisions": [
                {**asdict(d), "rejections": dict(d.rejections), "top_scores": list(d.top_scores)}
                for d in self.decisions
            ],
            "problems": list(self.problems),
            "efficacy": asdict(self.efficacy),
            # the problems as data too: the Overview finds a kind without reading English
            "issues": [as_data(p) for p in self.issues],
            **({"loads": dict(self.loads)} if self.loads is not None else {}),
        }
