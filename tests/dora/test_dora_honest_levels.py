"""Golden cases for numbers that look real but are not: every level and note earned, on every backend.

Issue 13, items 2, 4, 6 and 8. Times are offsets from Monday 2 March 2026 (``T0``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dora_builders import T0, D, H, M, chg, dep, inc
from pydantic import ValidationError

from metrichub_core import DoraQueryError, MetricHub
from metrichub_core.storage.base import EventQuery
from metrichub_core.storage.memory import MemoryStorage

S = timedelta(seconds=1)


async def test_cfr_level_comes_from_the_unrounded_rate(hub: MetricHub) -> None:
    # 1,019 deployments on the first day, one a minute; the first 51 each caused an incident.
    # 51 / 1019 = 0.0500490... shown rounded to 0.05, but above dora-2024's elite bound (<= 5 %),
    # so the level is the next one met: high (<= 20 %).
    deployments = [dep(f"d{n}", n * M) for n in range(1, 1020)]
    incidents = [inc(f"i{n}", n * M + 30 * S, n * M + H, caused_by=f"d{n}") for n in range(1, 52)]
    await hub.ingest([*deployments, *incidents])
    report = await hub.dora(since=T0, until=T0 + 7 * D)
    assert report.change_failure_rate.model_dump() == {"value": 0.05, "failed": 51, "total": 1019, "level": "high"}


async def test_no_incident_ever_recorded_rates_neither_cfr_nor_recovery(hub: MetricHub) -> None:
    await hub.ingest([chg("c1", 0 * H), dep("d1", 2 * H, ["c1"])])
    report = await hub.dora(since=T0, until=T0 + 7 * D)
    # 0 failed of 1 shows, but with no incident on record for api a 0 % is "unknown", not elite,
    # and without a CFR level the overall level is not rated either (a single deployment is not elite).
    assert report.change_failure_rate.model_dump() == {"value": 0.0, "failed": 0, "total": 1, "level": None}
    assert report.failed_deployment_recovery_time.level is None
    assert report.overall.level is None
    assert any(
        "none recorded for this scope at any time" in note and "incident source" in note for note in report.notes
    )


async def test_incidents_on_record_outside_the_window_rate_as_usual(hub: MetricHub) -> None:
    # An incident of api a month before the window: incidents are recorded, so 0 of 1 is elite.
    await hub.ingest([inc("old", -30 * D, -30 * D + H), chg("c1", 0 * H), dep("d1", 2 * H, ["c1"])])
    report = await hub.dora(since=T0, until=T0 + 7 * D)
    assert report.change_failure_rate.model_dump() == {"value": 0.0, "failed": 0, "total": 1, "level": "elite"}
    assert not any("none recorded" in note for note in report.notes)


async def test_a_window_shorter_than_a_week_has_no_frequency_band(hub: MetricHub) -> None:
    await hub.ingest([inc("old", -30 * D, -29 * D), dep("d1", 30 * M)])
    hour = await hub.dora(since=T0, until=T0 + H)
    # 1 deployment-day in 1 hour scales to 1 x 7 x 24 = 168 days a week: capped at 7, and the
    # band and level say nothing (a band counts days per week).
    frequency = hour.deployment_frequency
    assert (frequency.count, frequency.deploy_days_per_week_median, frequency.band, frequency.level) == (
        1,
        7.0,
        None,
        None,
    )
    assert any("shorter than 7 days has no band" in note for note in hour.notes)

    daily = await hub.dora_trend(since=T0, until=T0 + 2 * D, bucket="day")
    assert [(p.deployment_frequency.count, p.deployment_frequency.band) for p in daily.points] == [(1, None), (0, None)]


async def test_deploy_days_per_week_never_exceed_seven(hub: MetricHub) -> None:
    # Wednesday 12:00 to the next Wednesday 12:00: 7 days but no whole Monday-to-Sunday week, and
    # 8 calendar days (both Wednesdays partial), each with a deployment: Wednesday 13:00, Thursday
    # to Tuesday at 12:00, and the next Wednesday 11:00. 8 days x 7 / 7 days = 8 is capped at 7.
    start = T0 + 2 * D + 12 * H
    times = [start + H, *(start + n * D for n in range(1, 7)), start + 7 * D - H]
    await hub.ingest([inc("old", -30 * D, -29 * D), *(dep(f"d{n}", moment) for n, moment in enumerate(times))])
    report = await hub.dora(since=start, until=start + 7 * D)
    assert report.deployment_frequency.count == 8
    assert report.deployment_frequency.deploy_days_per_week_median == 7.0
    assert report.deployment_frequency.band == "on-demand"


async def test_summarised_recovery_and_restore_say_they_are_estimates(hub: MetricHub) -> None:
    # 10,001 incidents (one over the exact limit of 10,000), each resolved 1 to 10,001 seconds after
    # it started, all caused by d1. Backends that keep 1 % buckets above the limit must say so for
    # recovery and time to restore; the memory backend computes exactly and says nothing.
    incidents = [inc(f"i{n}", H + n * 1e-3 * M, H + n * 1e-3 * M + timedelta(seconds=n), caused_by="d1")
                 for n in range(1, 10_002)]  # fmt: skip
    await hub.ingest([dep("d1", 30 * M), *incidents])
    report = await hub.dora(since=T0, until=T0 + 7 * D)
    assert report.failed_deployment_recovery_time.count == report.time_to_restore.count == 10_001
    # Exact median of 1..10001 is 5001 s; buckets keep it within 1 %.
    assert abs((report.time_to_restore.median_seconds or 0) - 5001) <= 50.01
    estimated = {
        metric
        for metric in ("failed-deployment recovery time", "time to restore")
        if any(
            note.startswith(f"{metric}: median and p90 estimated from 1% buckets over 10001") for note in report.notes
        )
    }
    exact_backend = isinstance(hub.storage, MemoryStorage)
    assert estimated == (set() if exact_backend else {"failed-deployment recovery time", "time to restore"})


async def test_one_supported_range_of_times_stored_exactly(hub: MetricHub) -> None:
    # Item 7: event times and window bounds lie in [1970-01-01, 9000-01-01) UTC. Inside it every
    # backend stores a time to the microsecond; outside it the field or parameter is named.
    first = datetime(1970, 1, 1, 0, 5, tzinfo=UTC)  # started 5 minutes earlier: the first moment supported
    last = datetime(8999, 12, 31, 23, 59, 59, 999_998, tzinfo=UTC)
    await hub.ingest([dep("d-first", first), dep("d-last", last)])
    stored = {event.id: event for event in (await hub.storage.list_events(EventQuery(kind="deployment"))).items}
    assert (stored["d-first"].finished_at, stored["d-last"].finished_at) == (first, last)
    assert (await hub.dora(since=first, until=first + D)).deployment_frequency.count == 1
    late = datetime(8999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)  # the last moment a window may end at
    assert (await hub.dora(since=last - D, until=late)).deployment_frequency.count == 1

    with pytest.raises(ValidationError) as caught:
        dep("d-before", datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC))
    assert {error["loc"] for error in caught.value.errors()} == {("started_at",), ("finished_at",)}
    with pytest.raises(DoraQueryError, match=r"^until: must be from 1970-01-01 up to 9000-01-01"):
        await hub.dora(since=T0, until=date(9999, 12, 31))
    with pytest.raises(DoraQueryError, match=r"^since: "):
        await hub.dora(since=date(1969, 12, 31), until=T0)
    with pytest.raises(DoraQueryError, match=r"^days: "):
        await hub.dora(until=T0, days=10_000_000)


async def test_deployment_clock_notes_say_what_happened(hub: MetricHub) -> None:
    # Item 5. d1 finishes at 10:00. Each incident names it by caused_by (an incident may start
    # while its deployment is still finishing).
    # - early: 09:50 -> 09:55. Restore 5 min = 300 s. Deployment clock: 09:55 - 10:00 = -300 s,
    #   so it is dropped from recovery: resolved before its deployment finished, not before it started.
    # - late: 09:58 -> 10:20. Restore 22 min = 1320 s. Deployment clock: 10:20 - 10:00 = 20 min = 1200 s.
    # - backwards: 11:00 -> 10:50, resolved before it started: dropped from both.
    early = inc("early", 9 * H + 50 * M, 9 * H + 55 * M, caused_by="d1")
    late = inc("late", 9 * H + 58 * M, 10 * H + 20 * M, caused_by="d1")
    backwards = inc("backwards", 11 * H, 10 * H + 50 * M, caused_by="d1")
    await hub.ingest([dep("d1", 10 * H), early, late, backwards])
    clock = {"recovery_clock": "deployment"}
    report = await hub.dora(since=T0, until=T0 + 7 * D, options=clock)
    recovery, restore = report.failed_deployment_recovery_time, report.time_to_restore
    assert (recovery.count, recovery.median_seconds) == (1, 1200.0)
    # Time to restore keeps early and late: median of 300 and 1320 = 810 s.
    assert (restore.count, restore.median_seconds) == (2, 810.0)
    assert (
        "failed-deployment recovery time: 1 incident(s) resolved before the deployment they are attributed to "
        "finished were dropped (recovery_clock = deployment)" in report.notes
    )
    assert "incidents: 1 resolved before they started were dropped" in report.notes  # backwards only
    assert not any("no resolved incident attributed" in note for note in report.notes)

    # The incident clock measures early and late from their starts: 300 s and 1320 s, no such note.
    default = await hub.dora(since=T0, until=T0 + 7 * D)
    assert default.failed_deployment_recovery_time.count == 2
    assert not any("before the deployment they are attributed to" in note for note in default.notes)

    # Only early in the window (09:00 to 09:55): nothing left to measure, so recovery is not
    # rated, and the note says why instead of claiming that no attributed incident was resolved.
    only = await hub.dora(since=T0 + 9 * H, until=T0 + 9 * H + 55 * M, options=clock)
    assert (only.failed_deployment_recovery_time.count, only.failed_deployment_recovery_time.level) == (0, None)
    assert (only.time_to_restore.count, only.time_to_restore.median_seconds) == (1, 300.0)
    assert (
        "failed-deployment recovery time: 1 incident(s) resolved before the deployment they are attributed to "
        "finished were dropped (recovery_clock = deployment), not rated" in only.notes
    )
    assert not any("no resolved incident attributed" in note or "before they started" in note for note in only.notes)


IGNORED_NAME = "incident(s) named a deployment by caused_by that does not count"


async def test_caused_by_names_a_deployment_of_the_incidents_environment(hub: MetricHub) -> None:
    # Item 9 (a). v42 exists only in staging (09:00). The production deployment p1 finished at
    # 08:00; a production incident at 10:00 names v42. A staging deployment is not in production's
    # CFR denominator, so the name is not honoured: by time, the last production success before
    # 10:00 is p1. Production CFR = 1 failed / 1 deployment; the note counts the 1 incident.
    named = inc("i1", 10 * H, 11 * H, caused_by="v42")
    await hub.ingest([inc("old", -30 * D, -29 * D), dep("p1", 8 * H), dep("v42", 9 * H, environment="staging"), named])
    report = await hub.dora(since=T0, until=T0 + 7 * D)
    assert report.change_failure_rate.model_dump() == {"value": 1.0, "failed": 1, "total": 1, "level": "low"}
    # Recovery counts it (attributed to p1): 11:00 - 10:00 = 3600 s.
    assert (report.failed_deployment_recovery_time.count, report.failed_deployment_recovery_time.median_seconds) == (
        1,
        3600.0,
    )
    assert any(note.startswith(f"change failure rate: 1 {IGNORED_NAME}") for note in report.notes)
    # Staging: v42 deployed, no staging incident on record (the production one is not staging's).
    staging = await hub.dora(since=T0, until=T0 + 7 * D, environment="staging")
    assert (staging.change_failure_rate.failed, staging.change_failure_rate.total) == (0, 1)
    drill = await hub.dora_drilldown(since=T0, until=T0 + 7 * D)
    assert [(i.id, i.attribution, i.deployment_id) for i in drill.incidents] == [("i1", "time", "p1")]


async def test_caused_by_naming_a_failed_run_counts_only_when_failed_runs_count(hub: MetricHub) -> None:
    # Item 9 (b). s1 succeeded at 08:00; f1 failed at 09:00; incident i1 (10:00 -> 12:00) names f1.
    events = [inc("i1", 10 * H, 12 * H, caused_by="f1"), dep("s1", 8 * H), dep("f1", 9 * H, status="failure")]
    await hub.ingest(events)
    window = {"since": T0, "until": T0 + 7 * D}
    # Default options: a failed run is not in the denominator, so the name is not honoured and i1
    # is attributed by time to s1 (the last success before 10:00). CFR = 1 failed (s1) / 1
    # deployment (s1); recovery 12:00 - 10:00 = 7200 s; the note counts i1.
    default = await hub.dora(**window)
    assert (default.change_failure_rate.failed, default.change_failure_rate.total) == (1, 1)
    assert (default.failed_deployment_recovery_time.count, default.failed_deployment_recovery_time.median_seconds) == (
        1,
        7200.0,
    )
    assert any(note.startswith(f"change failure rate: 1 {IGNORED_NAME}") for note in default.notes)
    # failed_deployments_count: f1 is in the denominator, so it is i1's deployment. CFR = failed
    # {f1} (a failure counts as failed, and s1 caused nothing now) = 1 / (1 success + 1 failure) = 0.5;
    # recovery still counts i1 (7200 s, from its start), now as f1's; no note about the name.
    counted = await hub.dora(**window, options={"failed_deployments_count": True})
    assert counted.change_failure_rate.model_dump() == {"value": 0.5, "failed": 1, "total": 2, "level": "low"}
    assert (counted.failed_deployment_recovery_time.count, counted.failed_deployment_recovery_time.median_seconds) == (
        1,
        7200.0,
    )
    assert not any(IGNORED_NAME in note for note in counted.notes)
    drill = await hub.dora_drilldown(**window, options={"failed_deployments_count": True})
    assert [(i.attribution, i.deployment_id) for i in drill.incidents] == [("caused_by", "f1")]
    # With the deployment clock, recovery runs from f1's finish: 12:00 - 09:00 = 10800 s.
    clock = await hub.dora(**window, options={"failed_deployments_count": True, "recovery_clock": "deployment"})
    assert clock.failed_deployment_recovery_time.median_seconds == 10800.0
    # A named failed run is named, not found by time: an attribution window of 30 min (f1 finished
    # 1 h before i1) does not drop it, while under the default options i1 -> s1 (2 h) is dropped.
    short = {"attribution_window": timedelta(minutes=30)}
    assert (await hub.dora(**window, options=short)).change_failure_rate.failed == 0
    both = await hub.dora(**window, options={**short, "failed_deployments_count": True})
    assert (both.change_failure_rate.failed, both.change_failure_rate.total) == (1, 2)


async def test_caused_by_reported_by_several_sources_names_the_latest_counting_one(hub: MetricHub) -> None:
    # Item 9 (c). Two sources report deployment v7 of api in production: ci's succeeded at 08:00,
    # gh's failed at 09:00; the incident (10:00 -> 10:30) names v7; one success s0 at 07:00.
    events = [
        dep("s0", 7 * H),
        dep("v7", 8 * H, source="ci"),
        dep("v7", 9 * H, source="gh", status="failure"),
        inc("i1", 10 * H, 10 * H + 30 * M, caused_by="v7"),
    ]
    await hub.ingest(events)
    window = {"since": T0, "until": T0 + 7 * D}
    # Default options: only ci's v7 counts (the latest counting one), so it is the cause:
    # CFR = 1 (ci/v7) / 2 successes (s0, ci/v7) = 0.5; no note.
    default = await hub.dora(**window)
    assert (default.change_failure_rate.failed, default.change_failure_rate.total) == (1, 2)
    assert not any(IGNORED_NAME in note for note in default.notes)
    drill = await hub.dora_drilldown(**window)
    assert [(i.deployment_source, i.deployment_id) for i in drill.incidents] == [("ci", "v7")]
    # failed_deployments_count: both count; the latest by deployed time is gh's failed run (09:00).
    # CFR failed = {gh/v7} (ci/v7 caused nothing now) = 1 / (2 successes + 1 failure) = 1/3 -> 0.3333.
    counted = await hub.dora(**window, options={"failed_deployments_count": True})
    assert (counted.change_failure_rate.value, counted.change_failure_rate.failed) == (0.3333, 1)
    assert counted.change_failure_rate.total == 3
    drill = await hub.dora_drilldown(**window, options={"failed_deployments_count": True})
    assert [(i.deployment_source, i.deployment_id) for i in drill.incidents] == [("gh", "v7")]
    # Same finish time for both: the tie goes to the later source ("gh" > "ci"), as in deployed order.
    await hub.ingest([dep("v7", 9 * H, source="ci")])
    counted = await hub.dora(**window, options={"failed_deployments_count": True})
    drill = await hub.dora_drilldown(**window, options={"failed_deployments_count": True})
    assert [(i.deployment_source, i.deployment_id) for i in drill.incidents] == [("gh", "v7")]
    assert (counted.change_failure_rate.failed, counted.change_failure_rate.total) == (1, 3)
    # A failed run earlier than the success of the same id: the success is the latest counting one
    # under either option. web: gh's v8 failed at 06:00, ci's v8 succeeded at 06:30, j1 names v8.
    # failed_deployments_count: failed = {ci/v8 (caused j1), gh/v8 (a failure)} = 2 / (1 + 1) = 1.0.
    await hub.ingest(
        [
            dep("v8", 6 * H, source="gh", status="failure", service="web"),
            dep("v8", 6 * H + 30 * M, source="ci", service="web"),
            inc("j1", 7 * H, 8 * H, caused_by="v8", service="web"),
        ]
    )
    web = await hub.dora(**window, service="web", options={"failed_deployments_count": True})
    assert (web.change_failure_rate.failed, web.change_failure_rate.total) == (2, 2)
    drill = await hub.dora_drilldown(**window, service="web", options={"failed_deployments_count": True})
    assert [(i.deployment_source, i.deployment_id) for i in drill.incidents] == [("ci", "v8")]


async def test_sub_second_lead_times_keep_their_own_buckets(hub: MetricHub) -> None:
    # Item 3: 10,005 lead times (over the exact limit of 10,000: summarised on SQL backends).
    # d1 at 10:00 ships 5,003 changes committed at 10:00 (lead 0 s); d2 at 11:00 ships 5,002
    # committed 0.9 s before it (lead 0.9 s). Sorted: 5,003 zeros then 5,002 of 0.9.
    # Median: rank 0.5 x 10,004 = 5,002 -> the 5,003rd value, 0.0. p90: rank 9,003.6 -> 0.9.
    # Buckets start at 1 ms: 0 s is in bucket 0 ([0, 1 ms): within 1 ms), 0.9 s in its own 1 % bucket.
    # Before, both shared one bucket for everything under a second: median 0.45, p90 0.81.
    first, second = T0 + 10 * H, T0 + 11 * H
    zeros = [chg(f"z{n}", first) for n in range(5_003)]
    slow = [chg(f"s{n}", second - timedelta(milliseconds=900)) for n in range(5_002)]
    await hub.ingest([
        inc("old", -30 * D, -29 * D),
        *zeros,
        *slow,
        dep("d1", first, [c.id for c in zeros]),
        dep("d2", second, [c.id for c in slow]),
    ])  # fmt: skip
    lead = (await hub.dora(since=T0, until=T0 + 7 * D)).lead_time
    assert lead.count == 10_005
    assert lead.median_seconds is not None and abs(lead.median_seconds - 0.0) <= 0.001
    assert lead.p90_seconds is not None and abs(lead.p90_seconds - 0.9) <= 0.009  # 1 % of 0.9 s
    assert lead.mean_seconds == round(5_002 * 0.9 / 10_005, 3)  # the mean is always exact
