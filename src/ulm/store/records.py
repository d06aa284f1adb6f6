"""What the store keeps, as values: plan records, bookings, and actions to and from JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ulm.model import Action, Move, Plan, PowerOff, PowerOn


@dataclass(frozen=True, slots=True)
class PlanRecord:
    id: str
    created_at: float
    mode: str
    status: str
    plan: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Booking:
    id: int
    host: str
    start: float
    end: float
    power_off: bool
    reason: str
    status: str
    detail: str
    return_home: bool = False
    home_vms: tuple[str, ...] = ()


def action_dict(a: Action) -> dict[str, Any]:
    if isinstance(a, Move):
        return {"vm": a.vm, "src": a.src, "dst": a.dst, "reason": a.reason, "mem_mib": a.mem_mib}
    return {"host": a.host, "reason": a.reason}


def action(kind: str, d: dict[str, Any]) -> Action:
    if kind == "move":
        return Move(d["vm"], d["src"], d["dst"], d["reason"], d.get("mem_mib", 0.0))
    if kind == "power_on":
        return PowerOn(d["host"], d["reason"])
    return PowerOff(d["host"], d["reason"])


def action_from_dict(d: dict[str, Any]) -> Action:
    return action(d["kind"], d)


def actions_of(body: dict[str, Any]) -> Iterable[Action]:
    return (action_from_dict(a) for a in body["actions"])


def plan_from_body(body: dict[str, Any]) -> Plan:
    """A stored plan back as a `Plan` (for `ulm apply` and `ulm explain`)."""
    from ulm.model import Decision, Efficacy
    decisions = tuple(Decision(d["vm"], d["host"], d["trigger"], d["outcome"],
                               dict(d["rejections"]), tuple(tuple(x) for x in d["top_scores"]))
                      for d in body["decisions"])
    return Plan(body["snapshot_id"], body["policy_digest"], body["created_at"],
                tuple(actions_of(body)), decisions, tuple(body["problems"]),
                Efficacy(**body["efficacy"]))
