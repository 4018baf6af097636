"""Golden DORA cases, computed by hand in the comments, run on every backend.

Times are offsets from T0 = Monday 2 March 2026 00:00 UTC (``dora_builders``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from dora_builders import T0, D, H, M, at, chg, dep, inc

from metrichub_core import MetricHub

WEEK2 = T0 + 14 * D  # Monday 16 March


async def test_full_report_matches_hand_computation(hub: MetricHub) -> None:
    await hub.ingest([
        # Week 1 (Mon 2 - Sun 8 March): deployments on Mon (two), Tue, Wed, Thu -> 4 deployment days.
        chg("c1", 8 * H), dep("d1", 10 * H, ["c1"]),  # lead 10h - 8h = 7200 s
        chg("c2", 14 * H), dep("d2", 15 * H, ["c2"]),  # 3600 s
        chg("c3", 22 * H), chg("c4", D + 9 * H + 30 * M),
        dep("d3", D + 10 * H, ["c3", "c4"]),  # batched: 12 h = 43200 s and 30 min = 1800 s
        dep("d4", 2 * D + 10 * H),
        chg("c5", 3 * D + 6 * H), dep("d5", 3 * D + 10 * H, ["c5"], labels={"rework": "true"}),  # 14400 s
        # Week 2 (Mon 9 - Sun 15 March): Mon to Fri -> 5 deployment days.
        chg("c6", 4 * D + 10 * H), dep("d6", 7 * D + 10 * H, ["c6"]),  # 3 days = 259200 s
        chg("c7", 8 * D + 9 * H), dep("d7", 8 * D + 10 * H, ["c7"]),  # 3600 s
        dep("d8", 9 * D + 10 * H),
        chg("c8", 10 * D + 8 * H), dep("d9", 10 * D + 10 * H, ["c8"]),  # 7200 s
        chg("c9", 11 * D + 4 * H), dep("d10", 11 * D + 10 * H, ["c9"]),  # 21600 s
        # Not counted: before the window, staging, another service.
        chg("c0", -3 * D), dep("d0", -D, ["c0"]),
        dep("s1", 2 * D, ["c6"], environment="staging"),
        dep("o1", 2 * D, service="web"),
        # i1 at Tue 12:00 follows d3 (Tue 10:00): attributed by time; 45 min = 2700 s.
        inc("i1", D + 12 * H, D + 12 * H + 45 * M),
        # i2 names d8 although d9 is the last deployment before it: caused_by wins; 1.5 h = 5400 s.
        inc("i2", 10 * D + 11 * H, 10 * D + 12 * H + 30 * M, caused_by="d8"),
        # Not deployment-related: restore time only (2 h = 7200 s), and one still open.
        inc("i3", 12 * D, 12 * D + 2 * H, related=False),
        inc("i4", 13 * D, related=False),
    ])  # fmt: skip

    report = await hub.dora(since=T0, until=WEEK2, service="api")

    assert report.model_dump(mode="json") == {
        "window": {"since": "2026-03-02T00:00:00Z", "until": "2026-03-16T00:00:00Z"},
        "filters": {"service": "api", "environment": "production", "labels": {}},
        "profile": "dora-2024",
        # 10 deployments / 14 days = 0.714/day; 10 / (14/7) = 5.0/week; median of [4, 5] days = 4.5
        # -> band daily (>= 3) -> dora-2024 "between once per day and once per week" = high.
        "deployment_frequency": {
            "count": 10, "per_day": 0.714, "per_week": 5.0, "deploy_days_per_week_median": 4.5,
            "band": "daily", "level": "high",
        },
        # sorted: 1800 3600 3600 7200 7200 14400 21600 43200 259200 (n = 9)
        # median = rank 4 = 7200; p90 = rank 7.2 = 43200 + 0.2 * (259200 - 43200) = 86400
        # mean = 361800 / 9 = 40200; median < 1 day -> elite.
        "lead_time": {
            "median_seconds": 7200.0, "p90_seconds": 86400.0, "mean_seconds": 40200.0, "count": 9, "level": "elite",
            "breakdown": None,  # no change has merged_at
        },
        # failed = {d3, d8}: 2 / 10 = 0.2 <= 20 % (dora-2024 high).
        "change_failure_rate": {"value": 0.2, "failed": 2, "total": 10, "level": "high"},
        # [2700, 5400]: median 4050, p90 = 2700 + 0.9 * 2700 = 5130, mean 4050; > 1 h, < 1 day -> high.
        "failed_deployment_recovery_time": {
            "median_seconds": 4050.0, "p90_seconds": 5130.0, "mean_seconds": 4050.0, "count": 2, "open": 0,
            "level": "high",
        },
        # [2700, 5400, 7200]: median 5400, p90 = rank 1.8 = 5400 + 0.8 * 1800 = 6840, mean 15300 / 3 = 5100.
        "time_to_restore": {
            "median_seconds": 5400.0, "p90_seconds": 6840.0, "mean_seconds": 5100.0, "count": 3, "open": 1,
        },
        # d5 is labelled rework; no deployment finished while an incident was open: 1 / 10.
        "rework_rate": {"value": 0.1, "rework": 1, "total": 10},
        # worst of high, elite, high, high.
        "overall": {"level": "high"},
        "notes": [],
    }  # fmt: skip


async def test_median_and_p90_odd_and_even_counts(hub: MetricHub) -> None:
    # Odd: leads 10, 20, 30 min -> median 20 min = 1200 s; p90 = rank 1.8 = 1200 + 0.8 * 600 = 1680 s.
    await hub.ingest([
        chg("a", 50 * M), chg("b", 40 * M), chg("c", 30 * M), dep("d1", H, ["a", "b", "c"]),
    ])  # fmt: skip
    odd = await hub.dora(since=T0, until=T0 + D, service="api")
    assert (odd.lead_time.median_seconds, odd.lead_time.p90_seconds, odd.lead_time.count) == (1200.0, 1680.0, 3)

    # Even: add 40 min -> 600 1200 1800 2400: median = rank 1.5 = 1500 s (DevLake's lower median says 1200);
    # p90 = rank 2.7 = 1800 + 0.7 * 600 = 2220 s; mean = 6000 / 4 = 1500 s.
    await hub.ingest([chg("e", 20 * M), dep("d2", H, ["e"], source="ci2")])
    even = await hub.dora(since=T0, until=T0 + D, service="api")
    assert even.lead_time.model_dump() == {
        "median_seconds": 1500.0, "p90_seconds": 2220.0, "mean_seconds": 1500.0, "count": 4, "level": "elite",
        "breakdown": None,
    }  # fmt: skip


async def test_window_is_half_open(hub: MetricHub) -> None:
    await hub.ingest([
        dep("at-since", 0 * H), dep("inside", 5 * H), dep("at-until", D),
        inc("i-at-until", D, D + H), inc("i-inside", 6 * H, 7 * H, related=False),
    ])  # fmt: skip
    report = await hub.dora(since=T0, until=T0 + D)
    # [since, until): the deployment finished at since counts, the one at until does not.
    assert report.deployment_frequency.count == 2
    # Only the incident started inside the window is restored within it.
    assert report.time_to_restore.count == 1
    # But the incident at until (00:00 next day) was caused by "inside" (05:00), a deployment of this
    # window: a deployment counts as failed whenever its failure shows, so 1 of 2.
    assert (report.change_failure_rate.failed, report.change_failure_rate.total) == (1, 2)


async def test_non_utc_offsets_land_on_their_utc_day(hub: MetricHub) -> None:
    minus_two = timezone(timedelta(hours=-2))
    plus_five_thirty = timezone(timedelta(hours=5, minutes=30))
    await hub.ingest([
        # Sunday 23:30 at -02:00 is Monday 9 March 01:30 UTC.
        dep("late", datetime(2026, 3, 8, 23, 30, tzinfo=minus_two)),
        # Monday 03:00 at +05:30 is Sunday 8 March 21:30 UTC.
        dep("early", datetime(2026, 3, 9, 3, 0, tzinfo=plus_five_thirty)),
    ])  # fmt: skip
    trend = await hub.dora_trend(since=T0 + 6 * D, until=T0 + 8 * D, bucket="day")
    assert [(point.window.since.day, point.deployment_frequency.count) for point in trend.points] == [(8, 1), (9, 1)]
    monday = await hub.dora(since=datetime(2026, 3, 9, tzinfo=UTC), until=T0 + 8 * D)
    assert monday.deployment_frequency.count == 1


async def test_incident_before_any_deployment_is_unattributed(hub: MetricHub) -> None:
    await hub.ingest([inc("early", H, 2 * H), dep("d1", 3 * H)])
    report = await hub.dora(since=T0, until=T0 + D)
    # No deployment finished before 01:00: nothing failed; the incident still counts for time to restore.
    assert report.change_failure_rate.model_dump() == {"value": 0.0, "failed": 0, "total": 1, "level": "elite"}
    assert report.failed_deployment_recovery_time.count == 0
    assert report.failed_deployment_recovery_time.level is None
    assert report.time_to_restore.median_seconds == 3600.0
    assert any("could not be attributed" in note for note in report.notes)


async def test_caused_by_overrides_time_attribution(hub: MetricHub) -> None:
    await hub.ingest([dep("d1", H), dep("d2", 2 * H), inc("i", 3 * H, 4 * H, caused_by="d1")])
    report = await hub.dora(since=T0, until=T0 + D)
    # By time i would belong to d2; caused_by names d1. Either way exactly 1 of 2 deployments failed.
    assert (report.change_failure_rate.failed, report.change_failure_rate.total) == (1, 2)
    # Recovery clock from the deployment shows which one was chosen: 4 h - 1 h (d1) = 10800 s, not 7200 s.
    by_deployment = await hub.dora(since=T0, until=T0 + D, options={"recovery_clock": "deployment"})
    assert by_deployment.failed_deployment_recovery_time.median_seconds == 10800.0


async def test_non_deployment_incidents_only_count_for_time_to_restore(hub: MetricHub) -> None:
    await hub.ingest([dep("d1", H), inc("outage", 2 * H, 3 * H, related=False)])
    report = await hub.dora(since=T0, until=T0 + D)
    assert report.change_failure_rate.failed == 0
    assert report.failed_deployment_recovery_time.count == 0
    assert (report.time_to_restore.count, report.time_to_restore.median_seconds) == (1, 3600.0)


async def test_failed_then_retried_deployment(hub: MetricHub) -> None:
    await hub.ingest([
        inc("old", -30 * D, -30 * D + H),  # incidents are recorded for api, so a 0 % CFR is rated
        chg("c1", 0 * H),
        dep("try1", H, ["c1"], status="failure"),
        dep("try2", 2 * H, ["c1"]),  # the retry ships c1: lead 2 h
    ])  # fmt: skip
    report = await hub.dora(since=T0, until=T0 + D)
    # Default: the failed run is not a deployment (it never reached production); one deployment, no failure.
    assert report.deployment_frequency.count == 1
    assert report.lead_time.median_seconds == 7200.0
    assert report.change_failure_rate.model_dump() == {"value": 0.0, "failed": 0, "total": 1, "level": "elite"}
    assert any("status failure are not counted" in note for note in report.notes)
    # Option: a failure status is a change failure, in both terms: 1 / (1 + 1) = 0.5.
    counted = await hub.dora(since=T0, until=T0 + D, options={"failed_deployments_count": True})
    assert counted.change_failure_rate.model_dump() == {"value": 0.5, "failed": 1, "total": 2, "level": "low"}
    assert counted.deployment_frequency.count == 1


async def test_empty_window_reports_no_numbers(hub: MetricHub) -> None:
    await hub.ingest([dep("d1", -D)])
    report = await hub.dora(since=T0, until=T0 + 7 * D)
    assert report.deployment_frequency.model_dump() == {
        "count": 0, "per_day": 0.0, "per_week": 0.0, "deploy_days_per_week_median": 0.0, "band": "fewer",
        "level": None,
    }  # fmt: skip
    assert report.lead_time.model_dump() == {
        "median_seconds": None, "p90_seconds": None, "mean_seconds": None, "count": 0, "level": None,
        "breakdown": None,
    }  # fmt: skip
    assert report.change_failure_rate.model_dump() == {"value": None, "failed": 0, "total": 0, "level": None}
    assert report.rework_rate.model_dump() == {"value": None, "rework": 0, "total": 0}
    assert report.overall.level is None
    assert any("no successful deployment" in note for note in report.notes)
    assert any("none recorded" in note for note in report.notes)


async def test_middleware_change_failure_rate_case(hub: MetricHub) -> None:
    # Middleware's test_change_failure_rate.py multi case, relative to now = T0 + 20 days.
    now = 20 * D
    deployments = {"d1": -7 * D, "d2": -6 * D, "d3": -4 * D, "d4": -2 * D, "d5": -6 * H, "d6": -30 * M}
    incidents = [-10 * D, -5 * D, -3 * D, -20 * H, -4 * H, -2 * H, -H]
    await hub.ingest([dep(name, now + offset) for name, offset in deployments.items()])
    await hub.ingest([inc(f"i{n}", now + offset, now + offset + M) for n, offset in enumerate(incidents)])
    since, until = at(now - 11 * D), at(now)
    report = await hub.dora(since=since, until=until)
    # Each incident goes to the last deployment before it: -5d -> d2, -3d -> d3, -20h -> d4, -4h/-2h/-1h -> d5;
    # -10d precedes every deployment. Failed {d2, d3, d4, d5}: 4 / 6, as Middleware's 66.67 %.
    assert (report.change_failure_rate.failed, report.change_failure_rate.total) == (4, 6)
    assert report.change_failure_rate.value == 0.6667
    # Where we differ on purpose: with an attribution window of one day, -20h is 28 h after d4 and is
    # no longer blamed on it (Middleware and DevLake have no window): {d2, d3, d5} = 3 / 6.
    windowed = await hub.dora(since=since, until=until, options={"attribution_window": D})
    assert (windowed.change_failure_rate.failed, windowed.change_failure_rate.value) == (3, 0.5)


async def test_devlake_incident_linking_rule(hub: MetricHub) -> None:
    # DevLake's connect_incident_to_deployment fixture: an incident created 2022-09-15 01:56:16 links to the
    # last successful production deployment finished before it (09-14 06:51:47), not 09-15 06:51:47.
    def utc(day: int, hour: int, minute: int, second: int = 0) -> datetime:
        return datetime(2022, 9, day, hour, minute, second, tzinfo=UTC)

    await hub.ingest([
        dep("pipeline2-3", utc(14, 6, 51, 47)),
        dep("pipeline2-4", utc(15, 6, 51, 47)),
        dep("pipeline7", utc(24, 6, 51, 47)),
        dep("failed", utc(15, 0, 0), status="failure"),  # failures are never linked by time
        dep("staging", utc(15, 1, 0), environment="staging"),  # nor other environments
        dep("web", utc(15, 1, 30), service="web"),  # we link within the service (DevLake: within the project)
        inc("board1", utc(15, 1, 56, 16), utc(15, 3, 0)),
    ])  # fmt: skip
    report = await hub.dora(since=utc(14, 0, 0), until=utc(16, 0, 0), service="api")
    # Both pipeline2 runs are in the window; only the first failed: 1 / 2. Recovery from the deployment:
    # 15 03:00:00 - 14 06:51:47 = 20 h 08 min 13 s = 72493 s, which proves the link.
    assert (report.change_failure_rate.failed, report.change_failure_rate.total) == (1, 2)
    linked = await hub.dora(
        since=utc(14, 0, 0), until=utc(16, 0, 0), service="api", options={"recovery_clock": "deployment"}
    )
    assert linked.failed_deployment_recovery_time.median_seconds == 72493.0
    # DevLake links however long ago the deployment was; with a 12 h attribution window (19 h elapsed)
    # we leave it unattributed on purpose.
    windowed = await hub.dora(
        since=utc(14, 0, 0), until=utc(16, 0, 0), service="api", options={"attribution_window": timedelta(hours=12)}
    )
    assert windowed.change_failure_rate.failed == 0


async def test_lead_time_first_shipping_deployment_and_data_errors(hub: MetricHub) -> None:
    await hub.ingest([
        # The very first deployment counts (DevLake drops it): lead 1 h.
        chg("c1", 0 * H), dep("first", H, ["c1"]),
        # c2 is listed again by a later deployment: only its first shipping deployment counts (3 h - 1 h = 2 h).
        chg("c2", H), dep("d2", 3 * H, ["c2"]), dep("d3", 5 * H, ["c2"]),
        # Committed after it shipped: a data error, dropped and noted.
        chg("c3", 7 * H), dep("d4", 6 * H, ["c3"]),
        # A change id with no stored change: noted.
        dep("d5", 8 * H, ["ghost"]),
    ])  # fmt: skip
    report = await hub.dora(since=T0, until=T0 + D)
    # [3600, 7200] -> median 5400
    assert (report.lead_time.count, report.lead_time.median_seconds) == (2, 5400.0)
    assert any("1 change(s) committed after" in note for note in report.notes)
    assert any("1 change id(s)" in note for note in report.notes)


async def test_change_seen_by_two_sources_uses_earliest_commit(hub: MetricHub) -> None:
    await hub.ingest([chg("sha1", 2 * H, source="github"), chg("sha1", H, source="gitlab"), dep("d", 4 * H, ["sha1"])])
    report = await hub.dora(since=T0, until=T0 + D)
    assert (report.lead_time.count, report.lead_time.median_seconds) == (1, 3 * 3600.0)


async def test_rework_label_and_fix_deployment(hub: MetricHub) -> None:
    await hub.ingest([
        dep("d1", H),
        inc("i1", 2 * H, 5 * H),
        dep("fix", 3 * H),  # the first deployment while i1 is open: rework
        dep("later", 4 * H),  # not the first one: planned
        dep("hotfix", 8 * H, labels={"rework": "yes"}),
    ])  # fmt: skip
    report = await hub.dora(since=T0, until=T0 + D)
    assert report.rework_rate.model_dump() == {"value": 0.5, "rework": 2, "total": 4}


async def test_recovery_clock_option(hub: MetricHub) -> None:
    await hub.ingest([dep("d1", H), inc("i1", 2 * H, 4 * H)])
    incident_clock = await hub.dora(since=T0, until=T0 + D)
    deployment_clock = await hub.dora(since=T0, until=T0 + D, options={"recovery_clock": "deployment"})
    assert incident_clock.failed_deployment_recovery_time.median_seconds == 7200.0  # 4 h - 2 h
    assert deployment_clock.failed_deployment_recovery_time.median_seconds == 10800.0  # 4 h - 1 h
    assert deployment_clock.time_to_restore.median_seconds == 7200.0  # unaffected


async def test_open_incidents_are_counted_not_timed(hub: MetricHub) -> None:
    await hub.ingest([dep("d1", H), inc("i1", 2 * H), inc("i2", 3 * H, 4 * H)])
    report = await hub.dora(since=T0, until=T0 + D)
    assert (report.failed_deployment_recovery_time.count, report.failed_deployment_recovery_time.open) == (1, 1)
    assert (report.time_to_restore.count, report.time_to_restore.open) == (1, 1)


async def test_filters_service_environment_and_labels(hub: MetricHub) -> None:
    await hub.ingest([
        dep("a1", H, labels={"team": "pay"}), dep("a2", 2 * H, labels={"team": "core"}),
        dep("b1", H, service="web", labels={"team": "pay"}),
        dep("s1", H, environment="staging", labels={"team": "pay"}),
        inc("i1", 90 * M, 2 * H + 30 * M),  # after a1 (01:00), before a2 (02:00)
        inc("i2", 3 * H, 4 * H, environment="staging"),
    ])  # fmt: skip
    since, until = T0, T0 + D
    assert (await hub.dora(since=since, until=until)).deployment_frequency.count == 3  # a1, a2, b1
    assert (await hub.dora(since=since, until=until, service="api")).deployment_frequency.count == 2
    staging = await hub.dora(since=since, until=until, environment="staging")
    assert (staging.deployment_frequency.count, staging.change_failure_rate.failed) == (1, 1)
    pay = await hub.dora(since=since, until=until, labels={"team": "pay"})
    assert (pay.deployment_frequency.count, pay.change_failure_rate.failed) == (2, 1)  # a1 caused i1
    core = await hub.dora(since=since, until=until, labels={"team": "core"})
    # i1 is a1's: under team=core it is not counted, not even for time to restore.
    assert (core.deployment_frequency.count, core.change_failure_rate.failed, core.time_to_restore.count) == (1, 0, 0)


async def test_weekly_and_monthly_trends_include_empty_buckets(hub: MetricHub) -> None:
    await hub.ingest([dep("d1", H), dep("d2", 2 * H), dep("d3", 15 * D)])
    # Wednesday 25 Feb to Wednesday 18 March: a partial week, three Monday weeks, a partial week.
    weekly = await hub.dora_trend(since=T0 - 5 * D, until=T0 + 16 * D, bucket="week")
    assert [(p.window.since.date().isoformat(), p.deployment_frequency.count) for p in weekly.points] == [
        ("2026-02-25", 0), ("2026-03-02", 2), ("2026-03-09", 0), ("2026-03-16", 1),
    ]  # fmt: skip
    assert weekly.points[-1].window.until == T0 + 16 * D
    monthly = await hub.dora_trend(since=T0 - 5 * D, until=T0 + 40 * D, bucket="month")
    assert [(p.window.since.month, p.deployment_frequency.count) for p in monthly.points] == [(2, 0), (3, 3), (4, 0)]
    assert monthly.model_dump(mode="json")["bucket"] == "month"
