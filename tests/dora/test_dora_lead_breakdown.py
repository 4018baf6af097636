"""Golden cases of the lead-time breakdown (issue 13, item 10), on every backend.

Times are offsets from Monday 2 March 2026 (``T0``). Each counted change with a ``merged_at``
splits its lead time into commit to merge and merge to deploy; a merge outside
[first commit, deployment finish] is clamped into it and counted in ``notes``.
"""

from __future__ import annotations

from datetime import timedelta

from dora_builders import T0, D, H, chg, dep, inc

from metrichub_core import MetricHub
from metrichub_core.storage.memory import MemoryStorage

S = timedelta(seconds=1)


async def _ingest_golden(hub: MetricHub) -> None:
    await hub.ingest(
        [
            inc("old", -30 * D, -29 * D),  # incidents on record: not what this case is about
            chg("c1", 0 * H, merged=2 * H),  # d1 at 10 h: lead 36,000 s = 7,200 + 28,800
            chg("c2", 4 * H, merged=5 * H),  # d1: lead 21,600 = 3,600 + 18,000
            chg("c3", 6 * H),  # d1: lead 14,400, no merged_at: not in the breakdown
            chg("c4", 8 * H, merged=7 * H),  # d1: lead 7,200; merged before its commit: 0 + 7,200
            chg("c5", 9 * H, merged=12 * H),  # d1: lead 3,600; merged after d1 finished: 3,600 + 0
            chg("c6", 20 * H, merged=21 * H),  # d2 at 24 h: lead 14,400 = 3,600 + 10,800
            # Two sources report c7 (committed 26 h): the earliest merge (29 h) counts. d3 at 32 h:
            # lead 21,600 = 10,800 + 10,800.
            chg("c7", 26 * H, merged=30 * H),
            chg("c7", 26 * H, merged=29 * H, source="gh"),
            chg("c8", 40 * H, merged=39 * H),  # d3: committed after it, a negative lead: in neither
            dep("d1", 10 * H, ["c1", "c2", "c3", "c4", "c5"]),
            dep("d2", 24 * H, ["c6"]),
            dep("d3", 32 * H, ["c7", "c8"]),
            chg("w1", 0 * H, service="web"),  # web: a lead time, and no change with merged_at
            dep("w", 2 * H, ["w1"], service="web"),
        ]
    )


async def test_breakdown_matches_hand_computation(hub: MetricHub) -> None:
    await _ingest_golden(hub)
    report = await hub.dora(since=T0, until=T0 + 7 * D, service="api")
    lead = report.lead_time
    assert lead.count == 7  # c1..c7 (c8 is negative)
    assert lead.breakdown is not None
    # Commit to merge of c1, c2, c4, c5, c6, c7: 7,200, 3,600, 0, 3,600, 3,600, 10,800.
    # Sorted 0, 3,600, 3,600, 3,600, 7,200, 10,800 (n = 6): median rank 2.5 -> 3,600;
    # p90 rank 4.5 -> 7,200 + 0.5 x 3,600 = 9,000.
    assert lead.breakdown.commit_to_merge.model_dump() == {"median_seconds": 3600.0, "p90_seconds": 9000.0, "count": 6}
    # Merge to deploy: 28,800, 18,000, 7,200, 0, 10,800, 10,800. Sorted 0, 7,200, 10,800, 10,800,
    # 18,000, 28,800: median rank 2.5 -> 10,800; p90 rank 4.5 -> 18,000 + 0.5 x 10,800 = 23,400.
    assert lead.breakdown.merge_to_deploy.model_dump() == {
        "median_seconds": 10800.0,
        "p90_seconds": 23400.0,
        "count": 6,
    }
    notes = [note for note in report.notes if note.startswith("lead time breakdown")]
    assert notes == [
        "lead time breakdown: 1 change(s) merged before their first commit were counted as merged at it "
        "(commit to merge 0)",
        "lead time breakdown: 1 change(s) merged after the deployment that shipped them finished were counted "
        "as merged at its finish (merge to deploy 0)",
    ]
    dumped = report.model_dump(mode="json")["lead_time"]["breakdown"]
    assert set(dumped) == {"commit_to_merge", "merge_to_deploy"}


async def test_no_merged_at_means_no_breakdown(hub: MetricHub) -> None:
    await _ingest_golden(hub)
    web = await hub.dora(since=T0, until=T0 + 7 * D, service="web")
    assert web.lead_time.count == 1  # w1: 7,200 s
    assert web.lead_time.breakdown is None
    assert web.model_dump(mode="json")["lead_time"]["breakdown"] is None
    assert not any("breakdown" in note for note in web.notes)


async def test_trend_points_carry_their_breakdown(hub: MetricHub) -> None:
    await _ingest_golden(hub)
    trend = await hub.dora_trend(since=T0, until=T0 + 3 * D, bucket="day", service="api")
    stages = [None if p.lead_time.breakdown is None else p.lead_time.breakdown.model_dump() for p in trend.points]
    # Monday (d1): commit to merge 7,200, 3,600, 0, 3,600 -> sorted 0, 3,600, 3,600, 7,200: median
    # rank 1.5 -> 3,600, p90 rank 2.7 -> 3,600 + 0.7 x 3,600 = 6,120. Merge to deploy 28,800,
    # 18,000, 7,200, 0 -> sorted 0, 7,200, 18,000, 28,800: median 12,600, p90 18,000 + 0.7 x 10,800 = 25,560.
    # Tuesday (d2 at 24 h, d3 at 32 h): c6 and c7: commit to merge 3,600, 10,800 -> median 7,200,
    # p90 rank 0.9 -> 3,600 + 0.9 x 7,200 = 10,080; merge to deploy 10,800 twice.
    # Wednesday: no lead time, no breakdown.
    assert stages == [
        {
            "commit_to_merge": {"median_seconds": 3600.0, "p90_seconds": 6120.0, "count": 4},
            "merge_to_deploy": {"median_seconds": 12600.0, "p90_seconds": 25560.0, "count": 4},
        },
        {
            "commit_to_merge": {"median_seconds": 7200.0, "p90_seconds": 10080.0, "count": 2},
            "merge_to_deploy": {"median_seconds": 10800.0, "p90_seconds": 10800.0, "count": 2},
        },
        None,
    ]


async def test_re_ingested_merge_moves_the_breakdown(hub: MetricHub) -> None:
    # Derived data follows an update of merged_at alone (the lead time does not change).
    await hub.ingest([chg("c1", 0 * H, merged=1 * H), dep("d1", 10 * H, ["c1"])])
    first = (await hub.dora(since=T0, until=T0 + 7 * D)).lead_time.breakdown
    assert first is not None and first.commit_to_merge.median_seconds == 3600.0
    await hub.ingest([chg("c1", 0 * H, merged=4 * H)])
    second = (await hub.dora(since=T0, until=T0 + 7 * D)).lead_time.breakdown
    # 4 h after the commit, 6 h before the deployment.
    assert second is not None
    assert (second.commit_to_merge.median_seconds, second.merge_to_deploy.median_seconds) == (14400.0, 21600.0)
    await hub.ingest([chg("c1", 0 * H)])  # merged_at withdrawn
    assert (await hub.dora(since=T0, until=T0 + 7 * D)).lead_time.breakdown is None


async def test_summarised_breakdown_says_so(hub: MetricHub) -> None:
    # 10,001 changes (one over the exact limit of 10,000), change n committed at 08:00 and merged
    # n seconds later, shipped at 12:00 (d1 lists n = 1..5,000, d2 the rest: at most 10,000 a deployment).
    # Commit to merge: 1..10,001 s: median rank 5,000 -> 5,001; p90 rank 9,000 -> 9,001.
    # Merge to deploy: 14,400 - n = 4,399..14,399 s: median 9,399; p90 4,399 + 9,000 = 13,399.
    # SQL backends summarise in 1 % buckets above the limit and say so; memory is exact and silent.
    changes = [chg(f"c{n}", 8 * H, merged=8 * H + n * S) for n in range(1, 10_002)]
    await hub.ingest(
        [
            inc("old", -30 * D, -29 * D),
            *changes,
            dep("d1", 12 * H, [c.id for c in changes[:5_000]]),
            dep("d2", 12 * H, [c.id for c in changes[5_000:]]),
        ]
    )
    report = await hub.dora(since=T0, until=T0 + 7 * D)
    breakdown = report.lead_time.breakdown
    assert breakdown is not None
    for stage, median, p90 in ((breakdown.commit_to_merge, 5_001, 9_001), (breakdown.merge_to_deploy, 9_399, 13_399)):
        assert stage.count == 10_001
        assert abs((stage.median_seconds or 0) - median) <= median * 0.01
        assert abs((stage.p90_seconds or 0) - p90) <= p90 * 0.01
    estimated = [note for note in report.notes if note.startswith("lead time breakdown, ")]
    if isinstance(hub.storage, MemoryStorage):
        assert estimated == []
        assert (breakdown.commit_to_merge.median_seconds, breakdown.merge_to_deploy.p90_seconds) == (5_001, 13_399)
    else:
        assert estimated == [
            "lead time breakdown, commit to merge: median and p90 estimated from 1% buckets over 10001 changes",
            "lead time breakdown, merge to deploy: median and p90 estimated from 1% buckets over 10001 changes",
        ]


async def test_a_labelled_report_carries_the_breakdown_of_its_deployments(hub: MetricHub) -> None:
    # A label filter takes another path on the SQL backends (the window's events, not the rollups).
    await hub.ingest(
        [
            chg("c1", 0 * H, merged=2 * H),  # d1 (team x) at 10 h: 7,200 + 28,800
            chg("c2", 4 * H, merged=7 * H),  # d1: 10,800 + 10,800
            chg("c3", 4 * H, merged=5 * H),  # d2 (team y): not in team x's report
            dep("d1", 10 * H, ["c1", "c2"], labels={"team": "x"}),
            dep("d2", 12 * H, ["c3"], labels={"team": "y"}),
        ]
    )
    report = await hub.dora(since=T0, until=T0 + 7 * D, service="api", labels={"team": "x"})
    breakdown = report.lead_time.breakdown
    assert breakdown is not None
    # Commit to merge 7,200 and 10,800: median 9,000, p90 rank 0.9 -> 7,200 + 0.9 x 3,600 = 10,440.
    assert breakdown.commit_to_merge.model_dump() == {"median_seconds": 9000.0, "p90_seconds": 10440.0, "count": 2}
    # Merge to deploy 28,800 and 10,800: median 19,800, p90 10,800 + 0.9 x 18,000 = 27,000.
    assert breakdown.merge_to_deploy.model_dump() == {"median_seconds": 19800.0, "p90_seconds": 27000.0, "count": 2}
