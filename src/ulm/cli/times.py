"""Times on the command line: the one parser every time option goes through.

Accepted: `now`, an offset from now (`+30m`, `-2h`, `+1d`), seconds since the epoch, or an ISO
date-time (local time unless it names a zone, or UTC where the caller says so). Every result is
a finite time between 2000-01-01 and 2100-01-01: NaN, infinities and absurd epochs never reach
the store or a report.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

from ulm.errors import UlmError

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp()
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp()
_REL = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FORMS = "use now, +30m, -2h, +1d, seconds since the epoch or 2026-12-01T22:00"


def parse_time(text: str, now: float, option: str = "time", utc: bool = False) -> float:
    """`text` as seconds since the epoch; offsets count from `now`. `option` names the flag in
    errors; `utc`: a date-time without a zone is UTC instead of local time."""
    t = _read(text.strip(), now, utc)
    if t is None:
        raise UlmError(f"{option} {text!r}: cannot read it as a time: {_FORMS}")
    if not EARLIEST <= t <= LATEST:  # also false for NaN
        raise UlmError(f"{option} {text!r}: out of range: a time must fall between 2000-01-01 "
                       "and 2100-01-01")
    return t


def _read(text: str, now: float, utc: bool) -> float | None:
    if text == "now":
        return now
    m = _REL.match(text)
    if m:
        sign = 1.0 if m[1] == "+" else -1.0
        return now + sign * float(m[2]) * _UNIT_S[m[3]]
    try:
        return float(text)  # seconds since the epoch (nan and inf are refused by the range)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
        if utc and when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()
    except (ValueError, OverflowError, OSError):  # year 1 or 9999 may not convert
        return None


def show_time(t: float, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time for a table. A value no valid input gives (an old store's row) is shown
    as it is rather than crashing the listing."""
    if not math.isfinite(t) or not EARLIEST <= t <= LATEST:
        return f"invalid ({t:g})"
    return time.strftime(fmt, time.localtime(t))
