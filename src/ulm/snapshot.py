"""`Snapshot`: the cluster as seen at one instant, stored column-wise.

Columns rather than objects: building 50,000 `VM` objects per planning round costs more than
planning itself, and the simulator builds 288 snapshots a day. `Host`/`VM` objects are derived
on demand (`snapshot.hosts`, `snapshot.vms`) for people, JSON and tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ulm.arrays import F64, I64, B
from ulm.model import VM, Host, HostState, PowerCurve, Resources, VmState

_STATES = tuple(HostState)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The cluster at `taken_at`. Arrays are read-only; index i of every host_* column is one host.

    `vm_history` is V x W cpu demand (cpu units), oldest first, newest last; NaN where no sample
    exists (a young VM, a gap). `host_measured` is H x W measured host CPU as a fraction of
    capacity, NaN where the host reports nothing (then the sum of its VMs is used).
    """

    taken_at: float
    host_names: tuple[str, ...]
    host_cpu: F64
    host_mem: F64
    host_cores: I64
    host_state: tuple[HostState, ...]
    vm_names: tuple[str, ...]
    vm_host: I64  # index into host_names; -1 = not placed
    vm_cpu_size: F64
    vm_mem_size: F64
    vm_cpu: F64  # current demand
    vm_mem: F64  # current memory use
    vm_history: F64
    vm_vcpus: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    vm_migratable: B = field(default_factory=lambda: np.zeros(0, np.bool_))
    vm_stale: B = field(default_factory=lambda: np.zeros(0, np.bool_))
    vm_migrating_to: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    vm_last_moved: F64 = field(default_factory=lambda: np.zeros(0))
    #: Until when the VM backs off after a failed migration (NaN: it does not); the executor
    #: fills it in (`ulm.execute.backoff`), the scheduler keeps such a VM where it is.
    vm_backoff_until: F64 = field(default_factory=lambda: np.zeros(0))
    host_measured: F64 = field(default_factory=lambda: np.zeros((0, 0)))
    host_power: tuple[str, ...] = ()
    host_labels: tuple[Mapping[str, str], ...] = ()
    vm_labels: tuple[Mapping[str, str], ...] = ()
    #: CPU compatibility (`scheduler.masks`): the host's CPU model and features, the
    #: features a VM's CPU definition requires (empty: unknown, then no check).
    host_cpu_model: tuple[str, ...] = ()
    host_cpu_features: tuple[frozenset[str], ...] = ()
    vm_cpu_features: tuple[frozenset[str], ...] = ()
    #: Per VM, destinations it backs off from after failed moves: host -> until (`backoff`).
    vm_dest_backoff: tuple[Mapping[str, float], ...] = ()
    power_curves: Mapping[str, PowerCurve] = field(default_factory=dict)
    host_empty_since: F64 = field(default_factory=lambda: np.zeros(0))  # NaN: runs VMs
    host_on_since: F64 = field(default_factory=lambda: np.zeros(0))  # NaN: unknown
    host_cycles: I64 = field(default_factory=lambda: np.zeros(0, np.int64))  # last 24 h
    host_stale: B = field(default_factory=lambda: np.zeros(0, np.bool_))  # own figures stale
    #: Until when a host is not powered off again after a failed power-off (NaN: no back-off)
    host_power_backoff_until: F64 = field(default_factory=lambda: np.zeros(0))
    vm_gone: B = field(default_factory=lambda: np.zeros(0, np.bool_))  # listed by no host
    #: Per host, why its figures were disbelieved ("" = believed; `ulm.collect.guard`). A
    #: quarantined host is also `host_stale`, so the scheduler keeps away from it the same way.
    host_quarantine: tuple[str, ...] = ()
    #: Per VM, what its CPUs do (`VmState`): only a running VM is moved (`scheduler.state`).
    vm_state: tuple[VmState, ...] = ()
    #: Migrations ULM started on the day of `taken_at` (the policy's calendar day, UTC
    #: without a calendar) before `taken_at`: what `[gates] max_migrations_per_day` has left
    #: is the budget minus these (`ulm.budget`). The I/O shell counts them (the store's
    #: journal, the simulator's own moves).
    migrations_today: int = 0
    #: Per VM, the same day's count of its own migrations ULM started before `taken_at`, and
    #: the measured duration of its last migration (s; NaN: unknown): what the anti-thrash
    #: gates read (`[gates] max_moves_per_vm_per_day`, `cooldown_growth`). The I/O shell fills
    #: them as it does `migrations_today`.
    vm_moves_today: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    vm_last_move_s: F64 = field(default_factory=lambda: np.zeros(0))
    #: A name instead of the content hash: the simulator names its snapshots by trace and
    #: round (hashing 0.4 MB 288 times a simulated day was a tenth of its run time).
    name: str = ""

    def __post_init__(self) -> None:
        n_h, n_v = len(self.host_names), len(self.vm_names)
        fill: dict[str, object] = {}
        if len(self.vm_vcpus) != n_v:
            fill["vm_vcpus"] = np.ones(n_v, np.int64)
        if len(self.vm_migratable) != n_v:
            fill["vm_migratable"] = np.ones(n_v, np.bool_)
        if len(self.vm_stale) != n_v:
            fill["vm_stale"] = np.zeros(n_v, np.bool_)
        if len(self.vm_migrating_to) != n_v:
            fill["vm_migrating_to"] = np.full(n_v, -1, np.int64)
        if len(self.vm_last_moved) != n_v:
            fill["vm_last_moved"] = np.full(n_v, np.nan)
        if len(self.vm_backoff_until) != n_v:
            fill["vm_backoff_until"] = np.full(n_v, np.nan)
        if self.host_measured.shape[0] != n_h:
            fill["host_measured"] = np.full((n_h, 1), np.nan)
        if len(self.host_power) != n_h:
            fill["host_power"] = ("",) * n_h
        if len(self.host_labels) != n_h:
            fill["host_labels"] = ({},) * n_h
        if len(self.vm_labels) != n_v:
            fill["vm_labels"] = ({},) * n_v
        for name, n, empty in (("host_cpu_model", n_h, ""), ("host_cpu_features", n_h,
                               frozenset()), ("vm_cpu_features", n_v, frozenset()),
                               ("vm_dest_backoff", n_v, {})):
            if len(getattr(self, name)) != n:
                fill[name] = (empty,) * n
        for name in ("host_empty_since", "host_on_since", "host_power_backoff_until"):
            if len(getattr(self, name)) != n_h:  # NaN: unknown / none
                fill[name] = np.full(n_h, np.nan)
        if len(self.host_cycles) != n_h:
            fill["host_cycles"] = np.zeros(n_h, np.int64)
        if len(self.host_stale) != n_h:
            fill["host_stale"] = np.zeros(n_h, np.bool_)
        if len(self.vm_gone) != n_v:
            fill["vm_gone"] = np.zeros(n_v, np.bool_)
        if len(self.host_quarantine) != n_h:
            fill["host_quarantine"] = ("",) * n_h
        if len(self.vm_moves_today) != n_v:
            fill["vm_moves_today"] = np.zeros(n_v, np.int64)
        if len(self.vm_last_move_s) != n_v:
            fill["vm_last_move_s"] = np.full(n_v, np.nan)
        if len(self.vm_state) != n_v:
            fill["vm_state"] = (VmState.RUNNING,) * n_v
        for name, value in fill.items():
            object.__setattr__(self, name, value)
        self._check_shapes(n_h, n_v)
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    def _check_shapes(self, n_h: int, n_v: int) -> None:
        for name in ("host_cpu", "host_mem", "host_cores"):
            if len(getattr(self, name)) != n_h:
                raise ValueError(f"snapshot column {name} has {len(getattr(self, name))} rows, "
                                 f"expected {n_h} hosts")
        if len(self.host_state) != n_h:
            raise ValueError("snapshot column host_state does not match the hosts")
        for name in ("vm_host", "vm_cpu_size", "vm_mem_size", "vm_cpu", "vm_mem"):
            if len(getattr(self, name)) != n_v:
                raise ValueError(f"snapshot column {name} has {len(getattr(self, name))} rows, "
                                 f"expected {n_v} VMs")
        if self.vm_history.ndim != 2 or self.vm_history.shape[0] != n_v:
            raise ValueError("snapshot column vm_history must be VMs x samples")
        if n_v and (self.vm_host.max(initial=-1) >= n_h):
            raise ValueError("a VM refers to a host index that does not exist")

    # -- derived columns -------------------------------------------------------------------

    @cached_property
    def host_index(self) -> dict[str, int]:
        return dict(zip(self.host_names, range(self.n_hosts), strict=True))

    @cached_property
    def vm_index(self) -> dict[str, int]:
        return dict(zip(self.vm_names, range(self.n_vms), strict=True))

    @cached_property
    def host_on(self) -> B:
        if self.host_state.count(HostState.ON) == self.n_hosts:  # the usual case, in C
            return np.ones(self.n_hosts, np.bool_)
        return np.array([s is HostState.ON for s in self.host_state], dtype=np.bool_)

    @cached_property
    def host_core_cpu(self) -> F64:
        return self.host_cpu / np.maximum(self.host_cores, 1)

    @cached_property
    def id(self) -> str:
        """Content hash: two snapshots of the same cluster state have the same id (or `name`)."""
        if self.name:
            return self.name
        h = hashlib.blake2b(digest_size=12)
        h.update(repr(self.taken_at).encode())
        h.update("\0".join(self.host_names).encode())
        h.update("\0".join(self.vm_names).encode())
        h.update("\0".join(self.host_state).encode())  # HostState is a StrEnum: its values
        for col in (self.host_cpu, self.host_mem, self.vm_host, self.vm_cpu_size,
                    self.vm_mem_size, self.vm_cpu, self.vm_mem, self.vm_history,
                    self.vm_migratable, self.vm_migrating_to, self.vm_last_moved,
                    self.host_measured, self.host_empty_since, self.host_on_since,
                    self.host_cycles, self.host_stale, self.vm_stale, self.vm_gone):
            h.update(np.ascontiguousarray(col).tobytes())
        for until in (self.vm_backoff_until, self.host_power_backoff_until):
            if not np.isnan(until).all():  # hashed only when set: old ids stay
                h.update(np.ascontiguousarray(until).tobytes())
        if any(self.host_quarantine):  # hashed only when set: old ids stay
            h.update("\0".join(self.host_quarantine).encode())
        for extra in (self.host_cpu_features, self.vm_cpu_features, self.vm_dest_backoff):
            if any(extra):  # hashed only when set: old ids stay
                h.update(repr([sorted(x.items()) if isinstance(x, Mapping) else sorted(x)
                               for x in extra]).encode())
        if any(self.host_cpu_model):
            h.update("\0".join(self.host_cpu_model).encode())
        if self.vm_state.count(VmState.RUNNING) != self.n_vms:  # only when one is not
            h.update("\0".join(self.vm_state).encode())
        if self.migrations_today:  # hashed only when set: old ids stay
            h.update(f"migrations today {self.migrations_today}".encode())
        if self.vm_moves_today.any() or not np.isnan(self.vm_last_move_s).all():  # ditto
            h.update(np.ascontiguousarray(self.vm_moves_today).tobytes())
            h.update(np.ascontiguousarray(self.vm_last_move_s).tobytes())
        h.update(repr(sorted((k, sorted(v.items())) for k, v in
                             zip(self.vm_names, self.vm_labels, strict=True) if v)).encode())
        return h.hexdigest()

    @property
    def n_hosts(self) -> int:
        return len(self.host_names)

    @property
    def n_vms(self) -> int:
        return len(self.vm_names)

    # -- object views ----------------------------------------------------------------------

    @cached_property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(self.host(i) for i in range(self.n_hosts))

    @cached_property
    def vms(self) -> tuple[VM, ...]:
        return tuple(self.vm(i) for i in range(self.n_vms))

    def host(self, i: int) -> Host:
        measured = self.host_measured[i]
        return Host(
            name=self.host_names[i],
            capacity=Resources(float(self.host_cpu[i]), float(self.host_mem[i])),
            state=self.host_state[i],
            cores=int(self.host_cores[i]),
            labels=self.host_labels[i],
            power=self.host_power[i],
            cpu_model=self.host_cpu_model[i],
            cpu_features=self.host_cpu_features[i],
            cpu_history=tuple(float(x) for x in measured[~np.isnan(measured)]),
            empty_since=_opt(self.host_empty_since[i]),
            on_since=_opt(self.host_on_since[i]),
            power_cycles_24h=int(self.host_cycles[i]),
            stale=bool(self.host_stale[i]),
        )

    def vm(self, i: int) -> VM:
        hist = self.vm_history[i]
        h, dst = int(self.vm_host[i]), int(self.vm_migrating_to[i])
        moved = float(self.vm_last_moved[i])
        backoff = float(self.vm_backoff_until[i])
        return VM(
            name=self.vm_names[i],
            host=self.host_names[h] if h >= 0 else "",
            size=Resources(float(self.vm_cpu_size[i]), float(self.vm_mem_size[i])),
            load=Resources(float(self.vm_cpu[i]), float(self.vm_mem[i])),
            vcpus=int(self.vm_vcpus[i]),
            labels=self.vm_labels[i],
            migratable=bool(self.vm_migratable[i]),
            history=tuple(float(x) for x in hist[~np.isnan(hist)]),
            stale=bool(self.vm_stale[i]),
            migrating_to=self.host_names[dst] if dst >= 0 else "",
            last_moved_at=None if np.isnan(moved) else moved,
            backoff_until=None if np.isnan(backoff) else backoff,
            cpu_features=self.vm_cpu_features[i],
            dest_backoff=self.vm_dest_backoff[i],
            gone=bool(self.vm_gone[i]),
            moves_today=int(self.vm_moves_today[i]),
            last_move_s=_opt(self.vm_last_move_s[i]),
            state=self.vm_state[i],
        )

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        taken_at: float,
        hosts: Sequence[Host],
        vms: Iterable[VM],
        power_curves: Iterable[PowerCurve] = (),
        migrations_today: int = 0,
    ) -> Snapshot:
        """Builds the columns from objects (the JSON loader, tests, the store)."""
        vms = list(vms)
        index = _check_names(hosts, vms)
        width = max([len(v.history) for v in vms] + [len(h.cpu_history) for h in hosts] + [1])
        return cls(
            taken_at=float(taken_at),
            host_names=tuple(h.name for h in hosts),
            host_cpu=np.array([h.capacity.cpu for h in hosts], np.float64),
            host_mem=np.array([h.capacity.mem_mib for h in hosts], np.float64),
            host_cores=np.array([h.cores for h in hosts], np.int64),
            host_state=tuple(h.state for h in hosts),
            host_power=tuple(h.power for h in hosts),
            host_labels=tuple(h.labels for h in hosts),
            host_cpu_model=tuple(h.cpu_model for h in hosts),
            host_cpu_features=tuple(h.cpu_features for h in hosts),
            host_measured=_right_aligned([h.cpu_history for h in hosts], width),
            vm_names=tuple(v.name for v in vms),
            vm_host=np.array([index[v.host] if v.host else -1 for v in vms], np.int64),
            vm_cpu_size=np.array([v.size.cpu for v in vms], np.float64),
            vm_mem_size=np.array([v.size.mem_mib for v in vms], np.float64),
            vm_cpu=np.array([v.load.cpu for v in vms], np.float64),
            vm_mem=np.array([v.load.mem_mib for v in vms], np.float64),
            vm_history=_right_aligned([v.history or (v.load.cpu,) for v in vms], width),
            vm_vcpus=np.array([v.vcpus for v in vms], np.int64),
            vm_migratable=np.array([v.migratable for v in vms], np.bool_),
            vm_stale=np.array([v.stale for v in vms], np.bool_),
            vm_migrating_to=np.array(
                [index[v.migrating_to] if v.migrating_to else -1 for v in vms], np.int64),
            vm_last_moved=np.array(
                [np.nan if v.last_moved_at is None else v.last_moved_at for v in vms]),
            vm_backoff_until=np.array(
                [np.nan if v.backoff_until is None else v.backoff_until for v in vms]),
            vm_labels=tuple(v.labels for v in vms),
            vm_cpu_features=tuple(v.cpu_features for v in vms),
            vm_dest_backoff=tuple(v.dest_backoff for v in vms),
            power_curves={c.name: c for c in power_curves},
            host_empty_since=np.array([np.nan if h.empty_since is None else h.empty_since
                                       for h in hosts], np.float64),
            host_on_since=np.array([np.nan if h.on_since is None else h.on_since
                                    for h in hosts], np.float64),
            host_cycles=np.array([h.power_cycles_24h for h in hosts], np.int64),
            host_stale=np.array([h.stale for h in hosts], np.bool_),
            vm_gone=np.array([v.gone for v in vms], np.bool_),
            vm_state=tuple(v.state for v in vms),
            migrations_today=int(migrations_today),
            vm_moves_today=np.array([v.moves_today for v in vms], np.int64),
            vm_last_move_s=np.array(
                [np.nan if v.last_move_s is None else v.last_move_s for v in vms]),
        )


class SnapshotProblem(ValueError):
    """A snapshot that contradicts itself at `key` (a path such as `vms[3].host`): a name
    given twice, a VM on a host that is not in the snapshot. `kind` says which."""

    def __init__(self, key: str, problem: str, kind: str) -> None:
        self.key, self.problem, self.kind = key, problem, kind
        super().__init__(f"{key}: {problem}")


def _check_names(hosts: Sequence[Host], vms: Sequence[VM]) -> dict[str, int]:
    """Host name -> index; every problem names the offending entry and its first twin."""
    index: dict[str, int] = {}
    for i, h in enumerate(hosts):
        if h.name in index:
            raise SnapshotProblem(f"hosts[{i}].name", f"host {h.name!r} appears twice (also "
                                  f"hosts[{index[h.name]}])", "duplicate")
        index[h.name] = i
    seen: dict[str, int] = {}
    for j, v in enumerate(vms):
        if v.name in seen:
            raise SnapshotProblem(f"vms[{j}].name", f"VM {v.name!r} appears twice (also "
                                  f"vms[{seen[v.name]}])", "duplicate")
        seen[v.name] = j
        if v.host and v.host not in index:
            raise SnapshotProblem(f"vms[{j}].host", f"VM {v.name!r} is on unknown host "
                                  f"{v.host!r}", "unknown_host")
        if v.migrating_to and v.migrating_to not in index:
            raise SnapshotProblem(f"vms[{j}].migrating_to", f"VM {v.name!r} migrates to "
                                  f"unknown host {v.migrating_to!r}", "unknown_host")
    return index


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _right_aligned(rows: Sequence[Sequence[float]], width: int) -> F64:
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        if row:
            tail = list(row)[-width:]
            out[i, width - len(tail):] = tail
    return out


def quarantined(snap: Snapshot, why: Mapping[str, str]) -> Snapshot:
    """`snap` with the hosts in `why` (name -> reason) kept out of every decision: marked
    stale, as a host whose figures aged is, with the reason the explain row shows (a host
    already quarantined keeps its first reason)."""
    hit = [snap.host_index[h] for h in why if h in snap.host_index]
    if not hit:
        return snap
    stale = snap.host_stale.copy()
    stale[hit] = True
    reasons = tuple(old or why.get(n, "") for n, old in zip(snap.host_names,
                                                             snap.host_quarantine, strict=True))
    return replace(snap, host_stale=stale, host_quarantine=reasons)
