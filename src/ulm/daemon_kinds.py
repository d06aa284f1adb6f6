"""The daemon's modes, and what one round gives."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ulm.collect.base import Collection
from ulm.executor import PlanResult
from ulm.model import Plan


class Mode(enum.StrEnum):
    observe = "observe"
    advise = "advise"
    enforce = "enforce"


@dataclass(frozen=True, slots=True)
class RoundResult:
    collection: Collection
    plan: Plan | None
    plan_id: str | None
    result: PlanResult | None
