"""What ULM tells people about: one small, typed record per event."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from ulm.redact import redact


class Severity(enum.IntEnum):
    info = 10
    warning = 20
    error = 30
    critical = 40


# The kinds ULM publishes (a filter naming another kind is refused at config time).
KINDS = ("migration_failed", "migration_done", "drain_blocked", "wake_failed", "power_failed",
         "leader_changed", "daemon_degraded", "daemon_recovered", "plan_proposed",
         "vm_gone", "test")


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    severity: Severity
    message: str  # one line for people; credentials are blanked when it is rendered
    data: dict[str, Any] = field(default_factory=dict)  # host, vm, plan, ... for machines
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity.name, "ts": round(self.ts, 3),
                "message": redact(self.message),
                "data": {k: redact(v) if isinstance(v, str) else v
                         for k, v in self.data.items()}}
