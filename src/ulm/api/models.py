"""The API's request and response bodies (pydantic): what the OpenAPI document describes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _epoch(value: object) -> object:
    """Seconds since the epoch, or an ISO 8601 date-time (UTC unless it names a zone)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("a time is epoch seconds or ISO 8601, e.g. "
                             "2026-12-01T22:00:00Z") from None
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()
    return value


Epoch = Annotated[float, BeforeValidator(_epoch)]


def parse_time(text: str) -> float:
    return float(_epoch(text))  # type: ignore[arg-type]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    error: str


class MaintenanceWindow(BaseModel):
    id: int
    start: float
    end: float
    status: str  # booked | draining | drained | ... (as `maintenance`)
    power_off: bool


class HostOut(BaseModel):
    name: str
    state: str  # on | off | waking | maintenance | unknown
    cores: int
    cpu_capacity: float
    mem_mib: float
    cpu_measured: float | None  # the host's own CPU figure (fraction), newest
    cpu_vms: float  # the VMs' load over capacity (fraction)
    vms: list[str]
    labels: dict[str, str]
    power_curve: str
    on_since: float | None
    empty_since: float | None
    power_cycles_24h: int
    booking: int | None  # an active maintenance booking
    #: why the bogus-metrics guard disbelieves its figures ("" = believed): nothing is moved
    #: to or from it meanwhile (`ulm.collect.guard`; `hosts.quarantine` in the store)
    quarantine: str = ""
    #: how ULM switches it (`[hosts.power] driver`: ipmi, redfish, wol, ssh ...; "" = none)
    power_driver: str = ""
    power_address: str = ""  # its BMC / ssh address, credentials blanked (`ulm.redact`)
    next_maintenance: MaintenanceWindow | None = None  # the earliest window not yet over


class VMOut(BaseModel):
    name: str
    host: str
    vcpus: int
    cpu: float  # cpu units in use now
    mem_mib: float
    stale: bool  # no fresh figures: the load is the last known one
    managed: bool
    last_moved_at: float | None
    history: list[float]  # CPU demand, oldest first
    state: str = "running"  # running | paused | crashed | shut off: only a running VM moves
    cooldown_left_s: float = 0.0  # of its cool-down after its last move (`[gates]`): 0 = free


class CpuSeries(BaseModel):
    name: str
    since: float  # the range asked for, to now: at most 1,000 points (bucket means)
    until: float
    ts: list[float]
    cpu: list[float]  # fraction of the host


class MemSeries(BaseModel):
    name: str
    since: float
    until: float
    ts: list[float]
    mem: list[float]  # fraction of the host's memory in use
    mem_mib: list[float]  # in use
    mem_total_mib: float


class PlanSummary(BaseModel):
    id: str
    created_at: float
    mode: str
    status: str  # as stored: proposed | running | applied | failed | superseded | rejected
    actions: int
    problems: int
    #: READY | APPLYING | DONE | FAILED | SUPERSEDED | REJECTED (`ulm.planview.state`)
    state: str = "READY"


class LoadOut(BaseModel):
    cpu: float  # fraction of the host's CPU the VMs use
    mem: float  # fraction of its memory the VMs take


class RiskOut(BaseModel):
    #: near_threshold (value: the destination's CPU after, limit: the overload threshold)
    #: | long_move (value: the estimate, limit: the deadline, s) | moved_recently (value:
    #: seconds since, limit: the window) | dst_failed (value: seconds since, limit: window)
    #: | dst_paused (value: the destination's CPU after once its paused VMs resume, limit:
    #: the overload threshold) | vm_paused | vm_not_running (the VM's state now; no figures)
    kind: str
    value: float
    limit: float


class ActionOut(BaseModel):
    seq: int
    kind: str
    vm: str = ""
    src: str = ""
    dst: str = ""
    host: str = ""
    reason: str = ""
    mem_mib: float = 0.0


class PlanRowOut(ActionOut):
    """An action of the plan with what it does to both hosts (`ulm.planview.rows`)."""

    src_before: LoadOut | None = None  # None: the plan kept no figures of that host
    src_after: LoadOut | None = None
    dst_before: LoadOut | None = None
    dst_after: LoadOut | None = None
    estimate_s: float = 0.0
    estimate_basis: str = ""  # measured (past moves) | bandwidth (the executor's) | assumed
    risks: list[RiskOut] = []


class DecisionOut(BaseModel):
    vm: str
    host: str
    trigger: str
    outcome: str
    rejections: dict[str, int]
    top_scores: list[tuple[str, float]]


class OutcomeOut(BaseModel):
    seq: int
    kind: str
    vm: str
    src: str
    dst: str
    host: str
    status: str
    detail: str
    started_at: float
    finished_at: float


class PlanDetail(PlanSummary):
    snapshot_id: str
    policy_digest: str
    action_list: list[ActionOut]
    decisions: list[DecisionOut]
    problem_list: list[str]
    efficacy: dict[str, float]
    outcomes: list[OutcomeOut]
    rows: list[PlanRowOut] = []


class VMDecision(BaseModel):
    plan_id: str
    created_at: float
    mode: str
    status: str
    decision: DecisionOut
    moves: list[ActionOut]  # the plan's moves of this VM (none: it stayed)


class DecisionsOut(BaseModel):
    vm: str
    plans_searched: int
    decisions: list[VMDecision]


class BookingOut(BaseModel):
    id: int
    host: str
    start: float
    end: float
    power_off: bool
    reason: str
    status: str
    detail: str
    return_home: bool
    home_vms: list[str]


class HostEnergyOut(BaseModel):
    host: str
    kwh: float
    always_on_kwh: float
    hours_off: float
    power_cycles: int
    metered_hours: float


class EnergyPoint(BaseModel):
    ts: float  # the bucket's start
    kwh: float
    always_on_kwh: float


class EnergyOut(BaseModel):
    since: float
    until: float
    kwh: float
    always_on_kwh: float
    saved_kwh: float
    host_hours_off: float
    power_cycles: int
    metered_host_hours: float
    hosts: list[HostEnergyOut]
    series: list[EnergyPoint]


class EventOut(BaseModel):
    ts: float
    #: plan | outcome | maintenance | power (from the store), or a daemon event's kind
    #: (host_stale, daemon_degraded, migration_started, leader_changed, ...)
    kind: str
    subject: str  # the plan id, VM or host it is about
    detail: str
    plan_id: str = ""
    booking_id: int | None = None
    severity: str = ""  # a daemon event's: info | warning | error | critical
    #: every VM and host it concerns (a move: the VM, its source and destination)
    about: list[str] = []


class EventsPage(BaseModel):
    events: list[EventOut]
    total: int
    offset: int
    limit: int


class NextEvent(BaseModel):
    """What is scheduled next: a booking starting or ending, or the calendar's next period."""

    ts: float
    what: str


class OverviewOut(BaseModel):
    now: float
    mode: str
    hosts: dict[str, int]  # state -> count
    vms: int
    stale_vms: int
    #: migrations ULM started today (the policy's calendar day, UTC without a calendar)
    migrations_today: int
    problems: list[str]
    latest_plan: PlanSummary | None
    #: migrations started and not yet ended (open journal entries)
    in_flight: int = 0
    #: spread of CPU use over the hosts that are on (population standard deviation, 0..1)
    imbalance: float = 0.0
    energy_today_kwh: float = 0.0
    energy_today_always_on_kwh: float = 0.0  # the same hosts, never powered off
    next_event: NextEvent | None = None
    #: `[gates] max_migrations_per_day` in force now (None: no daily budget)
    migration_budget: int | None = None



# -- requests and their answers ----------------------------------------------------------------

class ApplyIn(_In):
    skip: list[Annotated[int, Field(ge=1)]] = []  # 1-based seq of actions not to apply


class RejectIn(_In):
    reason: Annotated[str, Field(max_length=500)] = ""


class ActionOutcomeOut(BaseModel):
    seq: int
    kind: str
    status: str
    detail: str


class ApplyOut(BaseModel):
    plan_id: str
    status: str
    outcomes: list[ActionOutcomeOut]


class BookingIn(_In):
    host: Annotated[str, Field(min_length=1)]
    start: Epoch
    end: Epoch
    power_off: bool = False
    reason: Annotated[str, Field(max_length=500)] = ""
    return_home: bool = False


class BookingResultOut(BaseModel):
    id: int
    status: str
    detail: str


class DrainIn(_In):
    power_off: bool = False


class ModeIn(_In):
    mode: Literal["observe", "advise", "enforce"]


class ModeOut(BaseModel):
    mode: str
    was: str


class MessageOut(BaseModel):
    message: str


def _builtin(name: str | None) -> str | None:
    """Only a built-in policy's name: the API never reads a file a caller names."""
    from ulm.policy import builtin_names
    if name is not None and name not in builtin_names():
        raise ValueError(f"not a built-in policy: one of {', '.join(builtin_names())}")
    return name


class PlanNowIn(_In):
    #: true: plan the current snapshot and answer with it; nothing is stored or applied
    dry_run: bool = False
    #: a built-in policy to plan under instead of the daemon's (implies dry_run)
    policy: Annotated[str | None, AfterValidator(_builtin)] = None


class PlanNowOut(BaseModel):
    plan_id: str | None  # None: a dry run, or a round that found nothing to do
    actions: int
    problems: list[str]
    dry_run: bool = False
    policy: str = ""  # the policy planned under (a dry run)
    action_list: list[ActionOut] = []  # a dry run's actions


class WhoAmI(BaseModel):
    name: str
    role: str
    via: str
