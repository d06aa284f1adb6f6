"""The snapshot JSON format (`ulm plan --snapshot FILE.json`), documented in docs/snapshot.md.

Validated with pydantic, so a bad file gets the same one-line error as a bad policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ulm.errors import ConfigError
from ulm.model import VM, Host, HostState, PowerCurve, Resources
from ulm.snapshot import Snapshot

NonNeg = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadIn(_Strict):
    cpu: NonNeg
    mem_mib: NonNeg = 0.0


class HostIn(_Strict):
    name: Annotated[str, Field(min_length=1)]
    cpu: Annotated[float, Field(gt=0)]
    mem_mib: Annotated[float, Field(gt=0)]
    cores: Annotated[int, Field(ge=1)] = 1
    state: HostState = HostState.ON
    labels: dict[str, str] = {}
    power: str = ""
    cpu_history: list[Annotated[float, Field(ge=0, le=1)]] = []
    empty_since: float | None = None
    on_since: float | None = None
    power_cycles_24h: Annotated[int, Field(ge=0)] = 0
    stale: bool = False


class VMIn(_Strict):
    name: Annotated[str, Field(min_length=1)]
    host: str
    cpu: Annotated[float, Field(gt=0)]
    mem_mib: Annotated[float, Field(gt=0)]
    vcpus: Annotated[int, Field(ge=1)] = 1
    load: LoadIn
    history: list[NonNeg] = []
    labels: dict[str, str] = {}
    migratable: bool = True
    stale: bool = False
    migrating_to: str = ""
    last_moved_at: float | None = None
    gone: bool = False


class SnapshotIn(_Strict):
    taken_at: float
    power_curves: dict[str, list[NonNeg]] = {}
    hosts: list[HostIn]
    vms: list[VMIn] = []


def load_snapshot(path: Path) -> Snapshot:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: snapshot file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read snapshot: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno})") from None
    return parse_snapshot(raw, str(path))


def parse_snapshot(raw: Any, source: str) -> Snapshot:
    try:
        doc = SnapshotIn.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{source}: {key}: {msg}") from None
    hosts = [Host(h.name, Resources(h.cpu, h.mem_mib), h.state, h.cores, h.labels, h.power,
                  tuple(h.cpu_history), h.empty_since, h.on_since, h.power_cycles_24h,
                  h.stale)
             for h in doc.hosts]
    vms = [VM(v.name, v.host, Resources(v.cpu, v.mem_mib), Resources(v.load.cpu, v.load.mem_mib),
              v.vcpus, v.labels, v.migratable, tuple(v.history), v.stale, v.migrating_to,
              v.last_moved_at, v.gone) for v in doc.vms]
    curves = [PowerCurve(name, tuple(w)) for name, w in doc.power_curves.items()]
    try:
        return Snapshot.build(doc.taken_at, hosts, vms, curves)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def snapshot_to_dict(snap: Snapshot) -> dict[str, Any]:
    return {
        "taken_at": snap.taken_at,
        "power_curves": {n: list(c.watts) for n, c in snap.power_curves.items()},
        "hosts": [
            {"name": h.name, "cpu": h.capacity.cpu, "mem_mib": h.capacity.mem_mib,
             "cores": h.cores, "state": h.state.value, "labels": dict(h.labels),
             "power": h.power, "cpu_history": list(h.cpu_history),
             "empty_since": h.empty_since, "on_since": h.on_since,
             "power_cycles_24h": h.power_cycles_24h, "stale": h.stale}
            for h in snap.hosts
        ],
        "vms": [
            {"name": v.name, "host": v.host, "cpu": v.size.cpu, "mem_mib": v.size.mem_mib,
             "vcpus": v.vcpus, "load": {"cpu": v.load.cpu, "mem_mib": v.load.mem_mib},
             "history": list(v.history), "labels": dict(v.labels),
             "migratable": v.migratable, "stale": v.stale, "migrating_to": v.migrating_to,
             "last_moved_at": v.last_moved_at, "gone": v.gone}
            for v in snap.vms
        ],
    }
