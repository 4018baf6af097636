"""Backend-free rules: profiles and levels, statistics, windows and input errors."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from dora_builders import T0, D, H

from metrichub_core import MetricHub
from metrichub_core.dora import PROFILES, DoraQueryError, Summary, UnknownProfile
from metrichub_core.dora._frequency import band_of, median_deploy_days_per_week
from metrichub_core.dora._protocol import Window
from metrichub_core.dora._stats import Bucket, bucket_of, percentile_cont
from metrichub_core.dora._windows import resolve_window, split
from metrichub_core.dora.profiles import MONTH, WEEK, get_profile


@pytest.mark.parametrize(
    ("profile", "lead", "cfr", "recovery", "expected"),
    [
        # dora-2021: lead < 1 h elite, <= 1 week high, <= 6 months medium; CFR <= 15 % elite, <= 30 % high.
        ("dora-2021", 30 * 60, 0.15, 30 * 60, ("elite", "elite", "elite")),
        ("dora-2021", 2 * 3600, 0.16, 2 * 3600, ("high", "high", "high")),
        ("dora-2021", 2 * WEEK, 0.31, 2 * 86400, ("medium", "low", "medium")),
        # dora-2023: lead < 1 day elite; CFR points 5/10/15 %; recovery 1 h / 1 day / 1 week.
        ("dora-2023", 86399, 0.05, 3599, ("elite", "elite", "elite")),
        ("dora-2023", 86400, 0.10, 3600, ("high", "high", "high")),
        ("dora-2023", MONTH, 0.15, WEEK, ("medium", "medium", "medium")),
        ("dora-2023", MONTH + 1, 0.151, WEEK + 1, ("low", "low", "low")),
        # dora-2024 publishes CFR high 20 % and medium 10 %: 12 % meets high's 20 %, so high (medium unreachable);
        # recovery: medium repeats high's "less than one day", so 1 day or more is low.
        ("dora-2024", 86400, 0.12, 86400, ("high", "high", "low")),
        ("dora-2024", WEEK + 1, 0.21, 3600, ("medium", "low", "high")),
    ],
)
def test_profile_levels(profile: str, lead: float, cfr: float, recovery: float, expected: tuple[str, ...]) -> None:
    chosen = PROFILES[profile]
    assert (
        chosen.classify(chosen.lead_time, lead),
        chosen.classify(chosen.change_failure_rate, cfr),
        chosen.classify(chosen.recovery_time, recovery),
    ) == expected


def test_frequency_bands_and_levels() -> None:
    seconds = 28 * 86400.0
    assert band_of(5, 40, seconds) == "on-demand"
    assert band_of(3, 12, seconds) == "daily"
    assert band_of(1, 4, seconds) == "weekly"
    assert band_of(0.5, 1, seconds) == "monthly"  # 1 deployment per 28 days >= once per 730 h
    assert band_of(0, 1, 60 * 86400.0) == "fewer"
    assert PROFILES["dora-2021"].frequency["monthly"] == "high"
    assert PROFILES["dora-2024"].frequency["monthly"] == "medium"


def test_median_deploy_days_uses_whole_monday_weeks() -> None:
    # Wednesday 25 Feb to Wednesday 18 March: whole weeks start 2 and 9 March.
    window = Window(T0 - 5 * D, T0 + 16 * D)
    days = {date(2026, 2, 26): 3, date(2026, 3, 2): 1, date(2026, 3, 3): 1, date(2026, 3, 4): 1, date(2026, 3, 9): 1}
    # 2 March week: 3 days; 9 March week: 1 day; 26 Feb is in no whole week -> median of [1, 3] = 2.
    assert median_deploy_days_per_week(window, days) == 2.0
    # No whole week in a 2-day window: 1 deployment day scaled to 7 days = 3.5.
    assert median_deploy_days_per_week(Window(T0, T0 + 2 * D), {date(2026, 3, 2): 2}) == 3.5


def test_percentile_cont() -> None:
    assert percentile_cont([1.0], 0.5) == 1.0
    assert percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile_cont([10.0, 20.0, 30.0, 40.0, 50.0], 0.9) == 46.0  # rank 3.6: 40 + 0.6 * 10


def test_bucket_summary_is_exact_for_sparse_values_and_within_one_percent_otherwise() -> None:
    few = [5.0, 7200.0, 7300.0]  # each in its own bucket: exact
    grouped: dict[int, list[float]] = {}
    for value in few:
        grouped.setdefault(bucket_of(value), []).append(value)
    summary = Summary.of_buckets(Bucket(len(v), sum(v), min(v), max(v)) for v in grouped.values())
    assert summary.quantile(0.5) == 7200.0
    assert summary.mean() == pytest.approx(sum(few) / 3)

    rng = random.Random(7)
    values = [rng.lognormvariate(9, 1.5) for _ in range(20_000)]
    grouped = {}
    for value in values:
        grouped.setdefault(bucket_of(value), []).append(value)
    sketch = Summary.of_buckets(Bucket(len(v), sum(v), min(v), max(v)) for v in grouped.values())
    exact = Summary.exact(values)
    for q in (0.5, 0.9):
        estimate, truth = sketch.quantile(q), exact.quantile(q)
        assert estimate is not None and truth is not None
        assert abs(estimate - truth) / truth < 0.01
    assert sketch.count == exact.count
    assert sketch.mean() == pytest.approx(exact.mean())


def test_split_buckets_clip_to_window() -> None:
    window = Window(datetime(2026, 1, 30, 12, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    months = split(window, "month")
    assert [(w.since.isoformat(), w.until.isoformat()) for w in months] == [
        ("2026-01-30T12:00:00+00:00", "2026-02-01T00:00:00+00:00"),
        ("2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"),
        ("2026-03-01T00:00:00+00:00", "2026-03-03T00:00:00+00:00"),
    ]
    weeks = split(window, "week")
    assert all(w.since.weekday() == 0 for w in weeks[1:])  # every bucket but the first starts on a Monday
    assert len(split(Window(T0, T0 + 3 * D), "day")) == 3
    december = split(Window(datetime(2025, 12, 20, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)), "month")
    assert [w.since.month for w in december] == [12, 1]


def test_window_defaults_and_errors() -> None:
    now = datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert resolve_window(None, None, None, now) == Window(now - 30 * D, now)
    assert resolve_window(None, None, 7, now) == Window(now - 7 * D, now)
    assert resolve_window(date(2026, 3, 1), date(2026, 3, 2), None) == Window(
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    )
    with pytest.raises(DoraQueryError, match=r"^since: must be before until"):
        resolve_window(T0, T0, None)
    with pytest.raises(DoraQueryError, match=r"^until: .* has no timezone"):
        resolve_window(T0, datetime(2026, 3, 5), None)
    with pytest.raises(DoraQueryError, match=r"^days:"):
        resolve_window(None, None, 0)
    with pytest.raises(DoraQueryError, match=r"^bucket: must be one of day, week, month"):
        split(Window(T0, T0 + H), "year")
    with pytest.raises(UnknownProfile, match=r"^profile: unknown benchmark profile 'dora-2019'"):
        get_profile("dora-2019")


async def test_hub_rejects_bad_input_naming_the_parameter() -> None:
    async with MetricHub(storage="memory://") as hub:
        with pytest.raises(ValueError, match=r"^profile:"):
            await hub.dora(since=T0, until=T0 + D, profile="dora-1999")
        with pytest.raises(ValueError, match=r"^since:"):
            await hub.dora(since=T0 + D, until=T0)
        with pytest.raises(ValueError, match=r"^bucket:"):
            await hub.dora_trend(since=T0, until=T0 + D, bucket="fortnight")
        with pytest.raises(ValueError, match=r"^options: unknown option"):
            await hub.dora(since=T0, until=T0 + D, options={"attribution": 3})
        with pytest.raises(ValueError, match=r"^environment:"):
            await hub.dora(since=T0, until=T0 + D, environment="")
        report = await hub.dora(
            since=T0, until=T0 + D, profile="dora-2021", options={"attribution_window": timedelta(1)}
        )
        assert report.profile == "dora-2021"
