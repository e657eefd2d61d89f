"""Wall-clock time in a customer's zone (quiet hours, rules, the hour features).

>>> local_hour(0.0, "Asia/Tokyo")
(9, 0)
>>> local_time(0.0, None).weekday()  # 1970-01-01 was a Thursday
3
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import cache

__all__ = ["local_hour", "local_time"]


@cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_time(now: float, timezone: str | None, default: str = "UTC") -> datetime:
    """``now`` (epoch seconds) in ``timezone`` (or ``default`` when unknown)."""
    return datetime.fromtimestamp(now, UTC).astimezone(_zone(timezone or default))


def local_hour(now: float, timezone: str | None, default: str = "UTC") -> tuple[int, int]:
    """(hour, minute) of ``now`` in ``timezone`` (or ``default`` when unknown)."""
    t = local_time(now, timezone, default)
    return t.hour, t.minute
