"""Windows: turning loose input into ``[since, until)`` in UTC, and calendar buckets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from metrichub_core.dora._errors import DoraQueryError
from metrichub_core.dora._protocol import Window
from metrichub_core.dora._report import TrendBucket
from metrichub_core.models import EARLIEST, LATEST

__all__ = ["DEFAULT_DAYS", "BUCKETS", "as_utc", "resolve_window", "split"]

DEFAULT_DAYS = 30
BUCKETS: tuple[TrendBucket, ...] = ("day", "week", "month")


def as_utc(parameter: str, moment: datetime | date) -> datetime:
    """A date means its midnight UTC; a naive datetime is an error, never a guess."""
    if not isinstance(moment, datetime):
        return _in_range(parameter, datetime.combine(moment, time(), tzinfo=UTC))
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DoraQueryError(parameter, f"{moment.isoformat()} has no timezone; give an aware datetime (e.g. UTC)")
    return _in_range(parameter, moment.astimezone(UTC))


def _in_range(parameter: str, moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise DoraQueryError(
            parameter, f"must be from {EARLIEST:%Y-%m-%d} up to {LATEST:%Y-%m-%d} (UTC), got {moment.isoformat()}"
        )
    return moment


def resolve_window(
    since: datetime | date | None,
    until: datetime | date | None,
    days: int | None,
    now: datetime | None = None,
) -> Window:
    """``until`` defaults to ``now``; ``since`` to ``days`` (default 30) before ``until``."""
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise DoraQueryError("days", f"must be a positive whole number of days, got {days!r}")
    if since is not None and days is not None:
        raise DoraQueryError("days", "give either since or days, not both")
    end = as_utc("until", until) if until is not None else (now or datetime.now(UTC))
    if since is not None:
        start = as_utc("since", since)
    else:
        try:
            start = _in_range("days", end - timedelta(days=days or DEFAULT_DAYS))
        except OverflowError:
            raise DoraQueryError("days", f"reaches before {EARLIEST:%Y-%m-%d}") from None
    if start >= end:
        raise DoraQueryError("since", f"must be before until ({start.isoformat()} >= {end.isoformat()})")
    return Window(start, end)


def _next_boundary(moment: datetime, bucket: TrendBucket) -> datetime:
    midnight = datetime.combine(moment.date(), time(), tzinfo=UTC)
    if bucket == "day":
        return midnight + timedelta(days=1)
    if bucket == "week":
        return midnight + timedelta(days=7 - moment.weekday())
    first = midnight.replace(day=1)
    return first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)


def split(window: Window, bucket: str) -> list[Window]:
    """The calendar buckets covering ``window`` (weeks start Monday), clipped to it."""
    if bucket not in BUCKETS:
        raise DoraQueryError("bucket", f"must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    windows: list[Window] = []
    start = window.since
    while start < window.until:
        end = min(_next_boundary(start, bucket), window.until)
        windows.append(Window(start, end))
        start = end
    return windows
