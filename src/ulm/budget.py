"""The daily migration budget (`[gates] max_migrations_per_day`): when a day begins, and how
much of the day's budget is left. Pure.

The day is the policy's calendar day, in the calendar's timezone (UTC without a calendar):
the I/O shell counts the migrations ULM started since `day_start` into the snapshot
(`Snapshot.migrations_today`), the scheduler plans at most what is left. A day is never
longer than 25 hours (a DST change), so "since local midnight" is always inside the last 25 h.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ulm.policy import Policy
from ulm.snapshot import Snapshot

_UTC = ZoneInfo("UTC")


def day_start(policy: Policy, now: float) -> float:
    """Epoch seconds of the midnight that began `now`'s day, in the policy's timezone."""
    zone = ZoneInfo(policy.calendar.timezone) if policy.calendar is not None else _UTC
    local = dt.datetime.fromtimestamp(now, zone)
    midnight = dt.datetime.combine(local.date(), dt.time(0), zone)
    return midnight.timestamp()


@dataclass(frozen=True, slots=True)
class DayBudget:
    """The day's budget as a plan at `at` sees it. `limit` None: no budget (unlimited)."""

    limit: int | None
    used: int  # migrations already started on that day

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


UNLIMITED = DayBudget(None, 0)


def day_budget(policy: Policy, in_force: Policy, taken_at: float, migrations_today: int,
               at: float) -> DayBudget:
    """What the budget of `in_force` (the policy at `at`: its office or night profile) leaves
    for a plan at `at`, given the migrations counted on the day of `taken_at`. A plan for a
    later day than the snapshot's starts from a fresh budget; `policy` (the base) says which
    calendar, so which day."""
    limit = in_force.gates.max_migrations_per_day
    same_day = day_start(policy, at) <= taken_at
    return DayBudget(limit, max(int(migrations_today), 0) if same_day else 0)


def left_at(policy: Policy, now: float, started_today: int) -> DayBudget:
    """The day's budget at `now` (the profile in force then), given the migrations started
    since `day_start(policy, now)`: what the executor's re-check asks before each move."""
    return DayBudget(policy.effective(now)[0].gates.max_migrations_per_day,
                     max(int(started_today), 0))


def queued(snap: Snapshot, holds: Any) -> Snapshot:
    """`snap` with the moves an earlier plan holds but has not started yet (`ulm.execute.holds`:
    plans in the background) counted as today's: they will start, and the next round must
    not plan past the budget in the meantime."""
    n = len(holds.moves()) - len(holds.in_flight())
    return dataclasses.replace(snap, migrations_today=snap.migrations_today + n) if n else snap
