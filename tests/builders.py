"""Small builders for scheduler tests: `host("h1", cpu=8)`, `vm("web", on="h1", load=0.9)`."""

from __future__ import annotations

from collections.abc import Sequence

from ulm.model import VM, Host, HostState, PowerCurve, Resources
from ulm.policy import Policy, parse_policy
from ulm.snapshot import Snapshot

FLAT = PowerCurve("flat", (100.0, 110.0, 120.0, 130.0, 140.0, 150.0, 160.0, 170.0, 180.0,
                           190.0, 200.0))


def host(name: str, cpu: float = 8.0, mem: float = 16384.0, cores: int = 8,
         state: HostState = HostState.ON, power: str = "flat", **labels: str) -> Host:
    return Host(name, Resources(cpu, mem), state, cores, dict(labels), power)


def vm(name: str, on: str, load: float, size: float = 2.0, mem: float = 2048.0,
       history: Sequence[float] | None = None, vcpus: int | None = None,
       migratable: bool = True, last_moved_at: float | None = None,
       labels: dict[str, str] | None = None, mem_used: float | None = None) -> VM:
    """`load` is the VM's CPU use in cpu units; history defaults to 4 samples of `load`."""
    hist = tuple(history) if history is not None else (load,) * 4
    return VM(name, on, Resources(size, mem), Resources(load, mem * 0.5 if mem_used is None
                                                          else mem_used),
              vcpus or max(int(size), 1), labels or {}, migratable, hist,
              last_moved_at=last_moved_at)


def snap(hosts: Sequence[Host], vms: Sequence[VM], at: float = 0.0) -> Snapshot:
    return Snapshot.build(at, hosts, vms, [FLAT])


def policy(toml: str = "") -> Policy:
    return parse_policy(toml, "<test>") if toml.strip() else Policy()


SEED = """
[overload]
threshold = 0.75
sustain = 3
window = 4
[selection]
rule = "largest"
[placement]
strategy = "first-fit"
"""
