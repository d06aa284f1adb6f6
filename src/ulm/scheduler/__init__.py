"""The pure core: `schedule(snapshot, policy, now) -> Plan`. No I/O, no clock, no environment."""

from ulm.scheduler.compiled import load_compiled
from ulm.scheduler.core import check_move, schedule
from ulm.scheduler.drain import DrainReport, check_drain
from ulm.scheduler.order import stages

__all__ = ["DrainReport", "check_drain", "check_move", "load_compiled", "schedule", "stages"]
