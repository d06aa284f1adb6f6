"""The pure core: `schedule(snapshot, policy, now) -> Plan`. No I/O, no clock, no environment."""

from ulm.scheduler.core import schedule
from ulm.scheduler.order import stages

__all__ = ["schedule", "stages"]
