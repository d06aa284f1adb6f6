"""The snapshot JSON format (`ulm plan --snapshot FILE.json`), documented in docs/snapshot.md.

Validated here, once, with pydantic: every number finite and inside the limits of
`ulm.numbers`, every name printable, every problem a `BadInput` naming the file and the key
path (`hosts[2].cpu`). The scheduler behind it can then trust its columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ulm.inputs import BadInput, Name, Text, key_path, read_bounded
from ulm.model import VM, Host, HostState, PowerCurve, Resources, VmState
from ulm.numbers import (
    MAX_CPU,
    MAX_CURVE_POINTS,
    MAX_HISTORY,
    MAX_HISTORY_CELLS,
    MAX_HOSTS,
    MAX_SNAPSHOT_BYTES,
    MAX_VMS,
    Count,
    Cpu,
    CpuSize,
    Mem,
    MemSize,
    PositiveCount,
    Seconds,
    Time,
    Watts,
)
from ulm.snapshot import Snapshot, SnapshotProblem, quarantined

#: Integer literals longer than this are read as floats: Python refuses to convert more than
#: 4300 digits (a ValueError, not a JSON error), and no count ULM takes needs 30.
_INT_DIGITS = 30


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LoadIn(_Strict):
    cpu: Cpu
    mem_mib: Mem = 0.0


Labels = Annotated[dict[Name, Text], Field(max_length=1000)]
#: CPU feature names (libvirt's: `avx2`, `sse4.2`): the host's, or what a VM's CPU requires.
Features = Annotated[list[Name], Field(max_length=1000)]


class HostIn(_Strict):
    name: Name
    cpu: CpuSize
    mem_mib: MemSize
    cores: PositiveCount = 1
    state: HostState = HostState.ON
    labels: Labels = {}
    power: Text = ""
    cpu_history: Annotated[list[Annotated[float, Field(ge=0, le=1)]],
                           Field(max_length=MAX_HISTORY)] = []
    empty_since: Time | None = None
    on_since: Time | None = None
    power_cycles_24h: Count = 0
    stale: bool = False
    cpu_model: Text = ""
    cpu_features: Features = []
    quarantine: Text = ""  # why the guard disbelieves its figures ("" = believed)


class VMIn(_Strict):
    name: Name
    host: Text
    cpu: CpuSize
    mem_mib: MemSize
    vcpus: PositiveCount = 1
    load: LoadIn
    history: Annotated[list[Annotated[float, Field(ge=0, le=MAX_CPU)]],
                       Field(max_length=MAX_HISTORY)] = []
    labels: Labels = {}
    migratable: bool = True
    stale: bool = False
    migrating_to: Text = ""
    last_moved_at: Time | None = None
    gone: bool = False
    #: migrations of this VM ULM started on the day of taken_at, before it, and how long its
    #: last one took (s): the anti-thrash gates (`[gates] max_moves_per_vm_per_day`, ...)
    moves_today: Count = 0
    last_move_s: Seconds | None = None
    cpu_features: Features = []
    state: VmState = VmState.RUNNING


class SnapshotIn(_Strict):
    taken_at: Time
    power_curves: Annotated[dict[Name, Annotated[list[Watts], Field(
        min_length=2, max_length=MAX_CURVE_POINTS)]], Field(max_length=1000)] = {}
    hosts: Annotated[list[HostIn], Field(max_length=MAX_HOSTS)]
    vms: Annotated[list[VMIn], Field(max_length=MAX_VMS)] = []
    #: migrations ULM started on the day of taken_at, before it (`[gates]
    #: max_migrations_per_day` leaves the budget minus these)
    migrations_today: Count = 0


def load_snapshot(path: Path) -> Snapshot:
    raw = read_bounded(path, MAX_SNAPSHOT_BYTES, "snapshot")
    source = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(source, f"not UTF-8 text (byte {exc.start})", kind="encoding") from None
    try:
        doc = json.loads(text, parse_int=_int, object_pairs_hook=_no_twins)
    except json.JSONDecodeError as exc:
        raise BadInput(source, f"not valid JSON: {exc.msg}", line=exc.lineno,
                       kind="syntax") from None
    except _TwinKey as exc:
        raise BadInput(source, f"key {exc.key!r} appears twice in one object: one of them "
                       "would be lost", kind="duplicate") from None
    except RecursionError:
        # The C decoder recurses once per level; real snapshots nest four deep.
        raise BadInput(source, "not valid JSON: nested too deeply", kind="too_deep") from None
    return parse_snapshot(doc, source)


class _TwinKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _no_twins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        raise _TwinKey(next(k for k, _ in pairs if k in seen or seen.add(k)))  # type: ignore[func-returns-value]
    return out


def _int(text: str) -> int | float:
    return int(text) if len(text) <= _INT_DIGITS else float(text)


def parse_snapshot(raw: Any, source: str) -> Snapshot:
    try:
        doc = SnapshotIn.model_validate(raw)
    except ValidationError as exc:
        raise _bad(exc, source) from None
    _check_history_table(doc, source)
    for i, h in enumerate(doc.hosts):
        if h.power and h.power not in doc.power_curves:
            raise BadInput(source, f"unknown power curve {h.power!r} (the snapshot's "
                           f"power_curves: {', '.join(map(repr, doc.power_curves)) or 'none'})",
                           f"hosts[{i}].power", kind="unknown_curve")
    hosts = [Host(h.name, Resources(h.cpu, h.mem_mib), h.state, h.cores, h.labels, h.power,
                  tuple(h.cpu_history), h.empty_since, h.on_since, h.power_cycles_24h,
                  h.stale, h.cpu_model, frozenset(h.cpu_features))
             for h in doc.hosts]
    vms = [VM(v.name, v.host, Resources(v.cpu, v.mem_mib), Resources(v.load.cpu, v.load.mem_mib),
              v.vcpus, v.labels, v.migratable, tuple(v.history), v.stale, v.migrating_to,
              v.last_moved_at, gone=v.gone, moves_today=v.moves_today, last_move_s=v.last_move_s,
              cpu_features=frozenset(v.cpu_features), state=v.state)
           for v in doc.vms]
    curves = [PowerCurve(name, tuple(w)) for name, w in doc.power_curves.items()]
    try:
        snap = Snapshot.build(doc.taken_at, hosts, vms, curves, doc.migrations_today)
        return quarantined(snap, {h.name: h.quarantine for h in doc.hosts if h.quarantine})
    except SnapshotProblem as exc:
        raise BadInput(source, exc.problem, exc.key, kind=exc.kind) from None


def _bad(exc: ValidationError, source: str) -> BadInput:
    """The first error (an unknown key first: a typo also shows up as a missing key)."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    key = key_path(err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return BadInput(source, "unknown key", key, kind="unknown_key")
    msg = err["msg"].removeprefix("Value error, ")
    if "input" in err and err["type"] != "missing" and not isinstance(err["input"], dict | list):
        text = repr(err["input"])
        msg += f", got {text if len(text) <= 60 else text[:57] + '...'}"
    return BadInput(source, msg, key, kind=err["type"])


def _check_history_table(doc: SnapshotIn, source: str) -> None:
    """The snapshot stores histories as one rectangle, rows x the longest history: one long
    history in a big snapshot would cost far more memory than the file's size."""
    rows = len(doc.hosts) + len(doc.vms)
    width = max([len(v.history) for v in doc.vms] + [len(h.cpu_history) for h in doc.hosts]
                + [1])
    if rows * width > MAX_HISTORY_CELLS:
        raise BadInput(source, f"{rows} hosts and VMs x the longest history ({width} samples) "
                       f"exceed {MAX_HISTORY_CELLS:,} history cells: shorten the histories",
                       kind="too_large")


def snapshot_to_dict(snap: Snapshot) -> dict[str, Any]:
    return {
        "taken_at": snap.taken_at,
        "migrations_today": snap.migrations_today,
        "power_curves": {n: list(c.watts) for n, c in snap.power_curves.items()},
        "hosts": [
            {"name": h.name, "cpu": h.capacity.cpu, "mem_mib": h.capacity.mem_mib,
             "cores": h.cores, "state": h.state.value, "labels": dict(h.labels),
             "power": h.power, "cpu_history": list(h.cpu_history),
             "empty_since": h.empty_since, "on_since": h.on_since,
             "power_cycles_24h": h.power_cycles_24h, "stale": h.stale, "quarantine": why,
             **({"cpu_model": h.cpu_model} if h.cpu_model else {}),
             **({"cpu_features": sorted(h.cpu_features)} if h.cpu_features else {})}
            for h, why in zip(snap.hosts, snap.host_quarantine, strict=True)
        ],
        "vms": [
            {"name": v.name, "host": v.host, "cpu": v.size.cpu, "mem_mib": v.size.mem_mib,
             "vcpus": v.vcpus, "load": {"cpu": v.load.cpu, "mem_mib": v.load.mem_mib},
             "history": list(v.history), "labels": dict(v.labels),
             "migratable": v.migratable, "stale": v.stale, "migrating_to": v.migrating_to,
             "last_moved_at": v.last_moved_at, "gone": v.gone, "state": v.state.value,
             "moves_today": v.moves_today, "last_move_s": v.last_move_s,
             **({"cpu_features": sorted(v.cpu_features)} if v.cpu_features else {})}
            for v in snap.vms
        ],
    }
