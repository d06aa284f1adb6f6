"""What a simulation is asked (`SimConfig`) and what it answers (`SimResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ulm.policy import Policy
from ulm.sim.hosttypes import Hosts


@dataclass(frozen=True)
class SimConfig:
    mode: str = "honest"  # "honest" | "compat"
    hosts: Hosts = field(default_factory=Hosts.cloudsim)
    seed: int = 0
    progress: Callable[[int, int], None] | None = None
    start: float = 0.0  # epoch seconds of the trace's first sample (calendar policies)
    boot_s: float | None = None  # None: CloudSim's instant, free power-off and power-on

    def __post_init__(self) -> None:
        if self.boot_s is not None and self.mode == "compat":
            raise ValueError("--boot-s models real power states; --cloudsim-compat keeps "
                             "CloudSim's instant power model: use one or the other")
        if self.boot_s is not None and self.boot_s < 0:
            raise ValueError(f"boot time must be >= 0 s, got {self.boot_s}")


@dataclass
class SimResult:
    trace: str
    policy: str
    mode: str
    vms: int
    vms_end: int
    energy_kwh: float
    migrations: int
    slatah: float
    pdm: float
    host_shutdowns: int
    wall_s: float
    lower_bound_kwh: float
    mem_overload: float  # share of active host time with VM memory use above host RAM
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slav(self) -> float:
        return self.slatah * self.pdm

    @property
    def esv(self) -> float:
        return self.energy_kwh * self.slav

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace": self.trace, "policy": self.policy, "mode": self.mode, "vms": self.vms,
            "vms_end": self.vms_end, "energy_kwh": self.energy_kwh,
            "migrations": self.migrations, "slatah": self.slatah, "pdm": self.pdm,
            "slav": self.slav, "esv": self.esv, "host_shutdowns": self.host_shutdowns,
            "mem_overload": self.mem_overload, "lower_bound_kwh": self.lower_bound_kwh,
            "wall_s": self.wall_s,
            **{k: v for k, v in self.extra.items() if k != "power_events"},  # a long list
        }


def mode_policy(policy: Policy, mode: str) -> Policy:
    """The policy as the mode runs it: compat switches CloudSim's quirks on, honest off."""
    compat = mode == "compat"
    placement = policy.placement.model_copy(update={"respect_memory": not compat})
    return policy.model_copy(update={"compat": "cloudsim" if compat else "none",
                                     "placement": placement})
