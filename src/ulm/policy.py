"""The policy an admin writes (TOML), validated with pydantic. Every key has a safe default.

A policy says *when* a host is in trouble (overload detector, memory pressure, under-load), *which*
VMs leave first (selection), *where* they go (placement strategy, filters), and *how much* may
happen per round (gates). `ulm policy check FILE` prints the effective policy.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ulm.calendar import Calendar, Freeze, Period
from ulm.errors import ConfigError
from ulm.inputs import LongText, Name, Text
from ulm.jsonout import dumps
from ulm.numbers import MAX_SEED, Count, PositiveCount, Seconds
from ulm.tomlfile import load_model, parse_model

#: More migrations a day than any cluster ULM manages could run (100,000 VMs each moving
#: ten times): a bigger figure is a typo, refused rather than read as "unlimited".
MAX_MIGRATIONS_PER_DAY = 1_000_000

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFraction = Annotated[float, Field(gt=0.0, le=1.0)]


class _Strict(BaseModel):
    # allow_inf_nan=False: TOML has `nan` and `inf`, and NaN passes every range check.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Demand(_Strict):
    """How a VM's CPU demand is estimated from its metric window (what placement reserves)."""

    estimator: Literal["current", "mean", "max", "percentile", "ewma"] = "current"
    window: Annotated[int, Field(ge=1, le=1000)] = 4  # samples the estimator looks at
    percentile: Annotated[float, Field(ge=0, le=100)] = 90.0
    alpha: PositiveFraction = 0.5  # EWMA weight of the newest sample


class Overload(_Strict):
    """When a host is overloaded. `threshold` with `sustain` of `window` is the seed's rule."""

    detector: Literal["threshold", "iqr", "mad", "lr", "lrr", "none"] = "threshold"
    threshold: PositiveFraction = 0.75
    sustain: Annotated[int, Field(ge=1, le=1000)] = 3  # samples above threshold ...
    window: Annotated[int, Field(ge=1, le=1000)] = 4  # ... out of the last `window`
    safety: Annotated[float, Field(gt=0, le=100)] = 1.5  # IQR/MAD multiplier, LR safety factor
    fallback_threshold: PositiveFraction = 0.7  # adaptive detectors, when history is short
    min_history_iqr: Annotated[int, Field(ge=2, le=1000)] = 12
    min_history_lr: Annotated[int, Field(ge=3, le=1000)] = 10
    # LR's horizon is ceil(migration time / interval): a tiny interval or bandwidth would
    # make it astronomically far, hence the floors.
    migration_interval_s: Annotated[float, Field(ge=1, le=86400)] = 300.0
    migration_mib_per_s: Annotated[float, Field(ge=0.001, le=1e9)] = 62.5
    memory_threshold: PositiveFraction = 1.0  # memory pressure: used / capacity above this

    @model_validator(mode="after")
    def _window_holds_sustain(self) -> Overload:
        if self.sustain > self.window:
            raise ValueError(f"sustain ({self.sustain}) must not exceed window ({self.window})")
        return self


class Selection(_Strict):
    """Which VM leaves an overloaded host first."""

    rule: Literal["largest", "mmt", "mc", "mu", "rs", "cost"] = "largest"
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0  # for `rs`


class Placement(_Strict):
    """Where a VM goes: the strategy ranks hosts that pass every filter."""

    #: `memory-fit`: the host left with the least free memory (best fit on RAM, what binds
    #: when every VM's RAM is reserved), ties by PABFD's power increase.
    strategy: Literal["pabfd", "first-fit", "balance", "memory-fit"] = "first-fit"
    cpu_overcommit: Annotated[float, Field(gt=0, le=64)] = 1.0
    mem_overcommit: Annotated[float, Field(gt=0, le=64)] = 1.0
    #: A destination must stay at or below this CPU fraction after the move (None: the
    #: overload detector's own verdict on the destination decides).
    max_cpu_after: Annotated[float, Field(gt=0, le=64)] | None = None
    respect_memory: bool = True  # false reproduces CloudSim, where RAM stops limiting after t=0


class Consolidation(_Strict):
    """Emptying under-loaded hosts, all-or-nothing per host, so they can be switched off."""

    enabled: bool = False
    underload_threshold: Fraction = 1.0  # only hosts below this CPU fraction are candidates
    max_hosts_per_round: Count | None = None
    #: Which under-loaded host is emptied next (honest mode; compat keeps CloudSim's order):
    #: `utilisation`, the least loaded; `fewest-vms`, the one that frees a host with the fewest
    #: migrations (ties: the cheapest, then the least loaded); `cheapest`, the one whose VMs
    #: cost the least SLA to move now (sum of CPU x RAM of its VMs: the PDM a drain adds;
    #: ties: fewest VMs, least loaded). docs/benchmarks.md, "ulm's ablation".
    order: Literal["utilisation", "fewest-vms", "cheapest"] = "utilisation"
    reserve_hosts: Count = 0  # hosts kept on beyond what the load needs
    headroom: Fraction = 0.0  # share of the ON capacity that must stay free
    power_off: bool = True  # power off hosts that the plan leaves empty
    settle_s: Seconds = 0.0  # a host must have been empty this long
    min_on_s: Seconds = 0.0  # ... and on at least this long
    max_cycles_per_day: Count | None = None  # power-offs per host, 24 h


class Balance(_Strict):
    """Office-hours balancing: hosts far above the cluster's mean CPU hand VMs to cool hosts."""

    enabled: bool = False
    spread: PositiveFraction = 0.2  # a host above mean + spread is too hot
    min_gain: PositiveFraction = 0.05  # a move must narrow the source-destination gap this much


class Gates(_Strict):
    """How much may happen: no ping-pong, no migration storms."""

    cooldown_s: Seconds = 0.0  # a VM moved less than this ago stays
    max_moves_per_round: Count | None = None
    max_concurrent_per_host: PositiveCount | None = None
    #: Migrations ULM may start per day (the calendar's timezone, UTC without one): relief,
    #: balance, consolidation and return home stop planning once today's are used up; a
    #: drain for booked maintenance counts but is never held back by it (docs/policy.md).
    max_migrations_per_day: Annotated[int, Field(ge=0, le=MAX_MIGRATIONS_PER_DAY)] | None = None
    #: Anti-thrash per VM (docs/policy.md): moves of one VM per day (the same day as
    #: `max_migrations_per_day`), and a cool-down that grows with each of its moves today:
    #: max(`cooldown_s`, its last migration's measured duration) x `cooldown_growth` ** (moves
    #: today - 1), at most `max_cooldown_s`. 1 (the default) keeps `cooldown_s` as it is. A
    #: drain for maintenance is held back by neither.
    max_moves_per_vm_per_day: PositiveCount | None = None
    cooldown_growth: Annotated[float, Field(ge=1.0, le=16.0)] = 1.0
    max_cooldown_s: Annotated[float, Field(ge=0, le=7 * 86400)] = 86400.0


_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9._/:-]{1,63}")


def _selector(value: dict[str, str]) -> dict[str, str]:
    """Every key = value pair must match; an empty selector (it would match everything) and
    keys or values no label can have (`[[hosts]] labels`, libvirt metadata) are refused."""
    if not value:
        raise ValueError("a selector needs at least one label = value")
    for k, v in value.items():
        if not _LABEL_KEY.fullmatch(k):
            raise ValueError(f"{k!r} is not a label key (letters, digits, . _ / -, up to 63)")
        if not _LABEL_VALUE.fullmatch(v):
            raise ValueError(f"{k} = {v!r} is not a label value (letters, digits, . _ / : -)")
    return value


Selector = Annotated[dict[str, str], Field(max_length=16), AfterValidator(_selector)]


class HostRule(_Strict):
    """VMs matching `vms` must / should / must not run on hosts matching `hosts` (vSphere's
    VM-host rules, oVirt's VM-to-host affinity). must and must-not are placement filters;
    should is a preference: a host matching fewer of a VM's should rules ranks worse."""

    vms: Selector
    hosts: Selector
    kind: Literal["must", "should", "must-not"]
    weight: Annotated[float, Field(gt=0, le=1000)] = 1.0  # should: this rule's share


class Constraints(_Strict):
    """Hard rules from the admin, beside VM labels (`ulm.pinned`, `ulm.anti-affinity`)."""

    pinned: tuple[Name, ...] = ()  # VM names never moved by ULM
    anti_affinity: tuple[tuple[Name, ...], ...] = ()  # groups of VMs that must not share a host
    #: Groups of VMs that must share a host (also: label `ulm.keep-together = "group[,..]"`,
    #: and `keep_together_labels`: all VMs matching one selector form one group). Relief and
    #: balancing never move such a VM alone; a drain moves its group to one host or none of
    #: it; a split group is joined on the host holding most of it (docs/policy.md).
    keep_together: tuple[tuple[Name, ...], ...] = ()
    keep_together_labels: Annotated[tuple[Selector, ...], Field(max_length=256)] = ()
    #: VMs labelled `ulm.priority = "critical"` are never moved but by a maintenance drain
    pin_critical: bool = False
    host_rules: Annotated[tuple[HostRule, ...], Field(max_length=256)] = ()
    #: What missing every should rule adds to a host's ranking cost, in the ranking's units
    #: (watts for pabfd, the CPU/memory fraction for balance, host positions for first-fit).
    should_weight: Annotated[float, Field(ge=0, le=1e6)] = 1000.0


class Simulation(_Strict):
    """How `ulm simulate` accounts this policy (the daemon ignores it)."""

    #: `utilisation`: a host draws its SPECpower watts at its CPU use, nothing when idle-off;
    #: `max-power`: every host draws its 100 % power all day (CloudSim's NPA baseline).
    energy: Literal["utilisation", "max-power"] = "utilisation"


class Policy(_Strict):
    """The base policy, plus optional `[office]` / `[night]` tables that override any of its
    keys in those periods of the `[calendar]` (office hours, holidays, change freezes)."""

    name: Text = "custom"
    description: LongText = ""
    compat: Literal["none", "cloudsim"] = "none"  # reproduce CloudSim 3.0.3's quirks
    #: `repair-only`: the plan only fixes rule violations (anti-affinity, keep-together,
    #: must / must-not label rules, CPU-incompatible hosts), with the fewest moves; no
    #: relief, balancing, consolidation or power-off (a maintenance drain still runs).
    mode: Literal["normal", "repair-only"] = "normal"
    demand: Demand = Demand()
    overload: Overload = Overload()
    selection: Selection = Selection()
    placement: Placement = Placement()
    consolidation: Consolidation = Consolidation()
    balance: Balance = Balance()
    gates: Gates = Gates()
    constraints: Constraints = Constraints()
    simulation: Simulation = Simulation()
    calendar: Calendar | None = None
    office: dict[str, Any] | None = None
    night: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _overrides_are_valid(self) -> Policy:
        for period in ("office", "night"):
            override = getattr(self, period)
            if override is None:
                continue
            if self.calendar is None:
                raise ValueError(f"[{period}] needs a [calendar] to say when it applies")
            bad = {"calendar", "office", "night", "name"} & override.keys()
            if bad:
                raise ValueError(f"[{period}] cannot override {', '.join(sorted(bad))}")
            try:
                _merged(self, override)
            except ValidationError as exc:
                err = exc.errors()[0]
                key = ".".join(str(p) for p in err["loc"])
                msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
                raise ValueError(f"{period}.{key}: {msg}") from None
        return self

    def effective(self, now: float) -> tuple[Policy, Period, Freeze | None]:
        """The policy in force at `now`, the calendar period, and a change freeze if one is on."""
        if self.calendar is None:
            return self, Period.OFFICE, None
        period = self.calendar.period(now)
        override = self.office if period is Period.OFFICE else self.night
        key = (self.digest, period.value)
        pol = _EFFECTIVE.get(key)
        if pol is None:
            pol = _merged(self, override) if override else self
            if len(_EFFECTIVE) > 64:
                _EFFECTIVE.clear()
            _EFFECTIVE[key] = pol
        return pol, period, self.calendar.freeze(now)

    @property
    def digest(self) -> str:
        """Stable hash of the effective policy: a plan records which policy made it."""
        # Every plan asks (288 times a simulated day); the policy is frozen, so the digest of
        # one object never changes. Keyed by identity (a copy is a new object), the object
        # kept alive so that its id is not reused.
        known = _DIGESTS.get(id(self))
        if known is not None and known[0] is self:
            return known[1]
        blob = dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        digest = hashlib.sha256(blob).hexdigest()[:16]
        if len(_DIGESTS) >= 64:
            _DIGESTS.clear()
        _DIGESTS[id(self)] = (self, digest)
        return digest


_EFFECTIVE: dict[tuple[str, str], Policy] = {}
_DIGESTS: dict[int, tuple[Policy, str]] = {}


def _merged(base: Policy, override: dict[str, Any]) -> Policy:
    data = base.model_dump(exclude={"calendar", "office", "night"})
    for section, value in override.items():
        if isinstance(value, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **value}
        else:
            data[section] = value
    return Policy.model_validate(data)


BUILTIN_DIR = "policies"


def builtin_names() -> list[str]:
    root = resources.files("ulm").joinpath(BUILTIN_DIR)
    return sorted(p.name.removesuffix(".toml") for p in root.iterdir()
                  if p.name.endswith(".toml"))


def load_policy(path: Path) -> Policy:
    return load_model(path, Policy, "policy")


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    return parse_model(text, Policy, "policy", source)


def resolve_policy(name_or_path: str) -> Policy:
    """The name of a built-in policy (`seed`, `lr-mmt-1.2`, ...), or a file path.

    A bare built-in name always means the built-in, whatever the current directory holds;
    a path must look like one (a `/` in it, or ending in `.toml`), so that a stray file named
    `seed` can never stand in for the built-in.
    """
    names = builtin_names()
    if name_or_path in names:
        text = resources.files("ulm").joinpath(BUILTIN_DIR, f"{name_or_path}.toml").read_text()
        return parse_policy(text, f"<built-in policy {name_or_path}>")
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        return load_policy(Path(name_or_path))
    hint = (f" (for the file, write ./{name_or_path})" if Path(name_or_path).exists() else "")
    raise ConfigError(f"unknown policy {name_or_path!r}: not a built-in policy "
                      f"({', '.join(names)}), and not a path to a .toml file{hint}")
