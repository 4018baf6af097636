from __future__ import annotations

from datetime import UTC, datetime, timedelta

from metrichub_core import Change, Deployment, Incident, MetricHub

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


async def test_report_end_to_end(hub: MetricHub) -> None:
    await hub.ingest([
        Change(id="c1", source="gh", service="api", committed_at=T0),
        Deployment(
            id="d1", source="ci", service="api", status="success", started_at=T0 + timedelta(hours=1),
            finished_at=T0 + timedelta(hours=2), change_ids=["c1"],
        ),
        Incident(id="i1", source="pd", service="api", started_at=T0 + timedelta(hours=3),
                 resolved_at=T0 + timedelta(hours=4)),
    ])  # fmt: skip
    report = await hub.dora(since=T0, until=T0 + timedelta(days=14), service="api")
    dumped = report.model_dump(mode="json")
    assert dumped["window"] == {"since": "2026-03-02T00:00:00Z", "until": "2026-03-16T00:00:00Z"}
    # lead: d1 finished 02:00 - c1 committed 00:00 = 7200 s
    assert dumped["lead_time"]["median_seconds"] == 7200.0
    # i1 started 03:00 after d1 (02:00): attributed to d1, so 1 of 1 deployments failed.
    assert dumped["change_failure_rate"] == {"value": 1.0, "failed": 1, "total": 1, "level": "low"}
    assert dumped["failed_deployment_recovery_time"]["median_seconds"] == 3600.0
