"""Time windows for ``GET /incidents``: ``since``/``until`` may be at most six months apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["MAX_WINDOW", "query_time", "windows"]

# PagerDuty says "6 months" without saying whether it counts calendar months; 180 days is
# within every reading of it.
MAX_WINDOW = timedelta(days=180)


def windows(start: datetime, end: datetime, span: timedelta = MAX_WINDOW) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows of at most ``span``, oldest first."""
    if span <= timedelta(0):
        raise ValueError("span must be positive")
    cuts: list[tuple[datetime, datetime]] = []
    low = start
    while low < end:
        high = min(low + span, end)
        cuts.append((low, high))
        low = high
    return cuts


def query_time(moment: datetime) -> str:
    """A ``since``/``until`` value with an explicit zone (PagerDuty would read a zone-less one
    in the account's time zone), whole seconds, rounded down."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
