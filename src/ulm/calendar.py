"""Office hours, holidays and change freezes: which period a moment falls in. Pure.

The scheduler is given `now`; this module turns it into a period of the admin's calendar, in the
admin's timezone: `office`, `pre-office` (the wake lead time before office hours: hosts are woken
so that nobody arrives to a packed cluster), `night` (outside office hours, weekends, holidays),
and whether a change freeze is on.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# HH:MM-HH:MM, hours 00-23 and minutes 00-59; the end may also be 24:00, the end of the day.
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")


def _end(m: re.Match[str]) -> tuple[str, str]:
    """The end of a matched span as (hour, minute): "24", "00" for the end of the day."""
    return (m[3], m[4]) if m[3] is not None else (m[5], m[6])


class Period(enum.StrEnum):
    OFFICE = "office"
    PRE_OFFICE = "pre-office"
    NIGHT = "night"


class Freeze(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.datetime
    end: dt.datetime
    reason: Annotated[str, Field(max_length=4096)] = ""

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        # Naive times are read in the calendar's timezone; one of each cannot be ordered
        # (and says two different things about where the freeze is).
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError("a freeze's start and end must both give a UTC offset (e.g. "
                             "2026-12-24T00:00:00+01:00) or both give none (then they are in "
                             "the calendar's timezone)")
        if self.end <= self.start:
            raise ValueError("a freeze must end after it starts")
        return self


class Calendar(BaseModel):
    """`office_hours` maps a weekday to "HH:MM-HH:MM" (local time); days not listed are off."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    timezone: str = "UTC"
    office_hours: dict[str, str] = Field(default_factory=lambda: {
        d: "08:00-18:00" for d in DAYS[:5]})
    holidays: tuple[dt.date, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    wake_lead_s: Annotated[float, Field(ge=0, le=86400)] = 1800.0

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as "
                             "'Europe/Berlin')") from None
        return value

    @field_validator("office_hours")
    @classmethod
    def _spans(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(DAYS)})")
            m = _SPAN.match(span)
            if not m or (m[1], m[2]) >= _end(m):
                raise ValueError(f"{day} = {span!r} is not a span like '08:00-18:00' (hours "
                                 "00-23, minutes 00-59, the end after the start; the end may "
                                 "be 24:00)")
        return value

    # -- reading -------------------------------------------------------------------------------

    def local(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, ZoneInfo(self.timezone))

    def office_span(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """Today's office hours as aware datetimes, or None (weekend, holiday)."""
        span = self.office_hours.get(DAYS[day.weekday()])
        if span is None or day in self.holidays:
            return None
        m = _SPAN.match(span)
        assert m is not None  # validated
        tz = ZoneInfo(self.timezone)
        start = dt.datetime.combine(day, dt.time(int(m[1]), int(m[2])), tz)
        hour, minute = _end(m)
        end = (dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(
            hours=int(hour), minutes=int(minute)))
        return start, end

    def period(self, now: float) -> Period:
        t = self.local(now)
        for day in (t.date(), t.date() + dt.timedelta(days=1)):
            span = self.office_span(day)
            if span is None:
                continue
            start, end = span
            if start <= t < end:
                return Period.OFFICE
            if start - dt.timedelta(seconds=self.wake_lead_s) <= t < start:
                return Period.PRE_OFFICE
        return Period.NIGHT

    def freeze(self, now: float) -> Freeze | None:
        t = self.local(now)
        for f in self.freezes:
            start = f.start if f.start.tzinfo else f.start.replace(tzinfo=t.tzinfo)
            end = f.end if f.end.tzinfo else f.end.replace(tzinfo=t.tzinfo)
            if start <= t < end:
                return f
        return None
