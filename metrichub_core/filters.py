"""What people type to filter reports and listings, read the same way by the API and the CLI.

- Moments: ``2026-03-02`` (midnight UTC), an ISO datetime with an offset, or ``30d``/``12h``/``2w`` ago.
- Labels: ``KEY=VALUE``, KEY 1-128 of ``A-Za-z0-9_.:/-`` (starting with a letter, digit or ``_``),
  VALUE up to 256 characters without control characters, spaces around either dropped; at most
  ``MAX_LABEL_FILTERS`` of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

__all__ = ["LABEL_PATTERN", "MAX_LABEL_FILTERS", "parse_label", "parse_labels", "parse_moment"]

MAX_LABEL_FILTERS = 20
"""Label filters per question, at most (each is one more condition on every matching event)."""
LABEL_PATTERN = r"^ *[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127} *= *[^\x00-\x1f\x7f]{0,256}$"
"""The grammar of one ``KEY=VALUE`` label filter (also published in the API's OpenAPI document)."""
_LABEL = re.compile(LABEL_PATTERN)
_RELATIVE = re.compile(r"^(\d+)([dhw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_label(text: str) -> tuple[str, str]:
    """``" team = payments "`` → ``("team", "payments")``; ``ValueError`` saying what is wrong."""
    if not _LABEL.match(text):
        raise ValueError(
            f"{text!r} is not KEY=VALUE (KEY 1-128 of A-Za-z0-9_.:/- starting with a letter, digit or _; "
            "VALUE up to 256 characters, no control characters)"
        )
    key, _, value = text.partition("=")
    return key.strip(), value.strip()


def parse_labels(texts: Iterable[str]) -> dict[str, str]:
    """Every ``KEY=VALUE`` filter as a mapping (a key given twice keeps its last value)."""
    listed = list(texts)
    if len(listed) > MAX_LABEL_FILTERS:
        raise ValueError(f"at most {MAX_LABEL_FILTERS} label filters, got {len(listed)}")
    return dict(parse_label(text) for text in listed)


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
