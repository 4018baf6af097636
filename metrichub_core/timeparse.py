"""Parsing the moments users type: ISO dates, ISO datetimes with an offset, ``30d``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

__all__ = ["parse_moment"]

_RELATIVE = re.compile(r"^(\d+)([dhw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """``2026-03-02`` → that day's midnight UTC; ``2026-03-02T10:00+02:00`` → UTC; ``30d`` → 30 days ago.

    A datetime without an offset is refused rather than guessed (``Z`` is fine).
    """
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return (now or datetime.now(UTC)) - int(relative.group(1)) * _UNITS[relative.group(2)]
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date (2026-03-02), an ISO datetime with offset, or 30d/12h/2w"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone: add Z or an offset such as +02:00")
    return moment.astimezone(UTC)
