"""Unit tests of the time-window helpers (the collection tests prove them against the fake)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from metrichub_plugin_pagerduty._windows import MAX_WINDOW, query_time, windows

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_windows_are_contiguous_and_at_most_180_days() -> None:
    cuts = windows(T, T + timedelta(days=400))
    assert cuts == [
        (T, T + timedelta(days=180)),
        (T + timedelta(days=180), T + timedelta(days=360)),
        (T + timedelta(days=360), T + timedelta(days=400)),
    ]
    assert windows(T, T + MAX_WINDOW) == [(T, T + MAX_WINDOW)]
    assert windows(T, T) == []
    with pytest.raises(ValueError):
        windows(T, T + timedelta(days=1), timedelta(0))


def test_query_times_carry_an_explicit_zone_in_whole_seconds() -> None:
    moment = datetime(2026, 3, 2, 10, 0, 5, 999_000, tzinfo=timezone(timedelta(hours=2)))
    assert query_time(moment) == "2026-03-02T08:00:05Z"
