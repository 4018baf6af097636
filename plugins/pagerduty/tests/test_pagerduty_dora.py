"""End to end: the example ``shipit`` plugin supplies deployments, PagerDuty the incidents of the same
service, both collected over real HTTP; ``hub.dora()`` gives the hand-computed CFR and recovery times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pagerduty_fake import FakePagerDuty, make_incident, now_s, table

from metrichub_core import MetricHub
from metrichub_core.config import Settings
from metrichub_core.testing import FakeUpstream, Reply


def day(base: datetime, days: int, hour: int, minute: int = 0) -> datetime:
    return base + timedelta(days=days, hours=hour, minutes=minute)


@pytest.fixture
def shipit() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


async def test_pagerduty_incidents_give_change_failure_rate_and_recovery_time(
    pagerduty: FakePagerDuty, shipit: FakeUpstream
) -> None:
    base = now_s().replace(hour=0, minute=0, second=0) - timedelta(days=20)
    # Shipit (the example plugin): deployments 1..6 of checkout succeed at day k, 10:00 (started 09:50);
    # deployment 7 fails (a failed deployment is in neither term of the rate by default).
    deploys: list[dict[str, Any]] = [
        {"id": k, "app": "checkout", "env": "production", "state": "failed" if k == 7 else "succeeded",
         "started_at": day(base, k, 9, 50).isoformat(), "finished_at": day(base, k, 10).isoformat(),
         "updated_at": day(base, k, 10).isoformat(), "sha": f"{k:040x}", "commits": []}
        for k in range(1, 8)
    ]  # fmt: skip
    shipit.pages("/api/v1/deploys", deploys, since_field="updated_at", since_param="updated_since")
    shipit.script("/api/v1/incidents", Reply(200, json=[]))
    # PagerDuty: PCHK001 is checkout, PPAY002 payments.
    pagerduty.add(
        # #1 day 1 10:30 -> 11:15 (45 min): after deployment 1 -> deployment 1 failed (by time).
        make_incident(1, service="PCHK001", created=day(base, 1, 10, 30), resolved=day(base, 1, 11, 15)),
        # #2 day 3 12:00 -> 14:00 (2 h): a note names deployment 2 -> deployment 2 failed (caused_by wins).
        make_incident(2, service="PCHK001", created=day(base, 3, 12), resolved=day(base, 3, 14)),
        # #3 day 3 13:00 -> 13:30 (30 min): its note names a SHA, no deployment id -> by time: deployment 3.
        make_incident(3, service="PCHK001", created=day(base, 3, 13), resolved=day(base, 3, 13, 30)),
        # #4 day 4 12:00, still open: by time, deployment 4 failed; open in recovery.
        make_incident(4, service="PCHK001", created=day(base, 4, 12), status="acknowledged"),
        # #5 is payments': not in checkout's report.
        make_incident(5, service="PPAY002", created=day(base, 5, 12), resolved=day(base, 5, 12, 10)),
    )
    pagerduty.note("Q000002", "Bad migration.\nCaused-by: 2", day(base, 3, 14))
    pagerduty.note("Q000003", "Caused-by: 0a1b2c3d4e5f", day(base, 3, 13, 30))
    sources: dict[str, dict[str, Any]] = {
        "ship": {"kind": "shipit", "base_url": f"{shipit.url}/api/v1/", "token": "shipit-token"},
        "pd": table(pagerduty.url),
    }
    async with MetricHub("memory://", settings=Settings(sources=sources)) as hub:
        results = await hub.collect()
        assert all(result.ok for result in results), [result.error for result in results]
        report = (await hub.dora(since=base, until=base + timedelta(days=10), service="checkout")).model_dump()

    cfr = report["change_failure_rate"]
    # Failed: deployments 1 (#1), 2 (#2 by Caused-by), 3 (#3 by time), 4 (#4 open) of the 6 successful ones:
    # 4 / 6 = 0.6667.
    assert (cfr["failed"], cfr["total"], cfr["value"]) == (4, 6, 0.6667)
    recovery = report["failed_deployment_recovery_time"]
    # Resolved attributed incidents: #3 1,800 s, #1 2,700 s, #2 7,200 s; #4 open.
    # median 2,700; mean (1,800 + 2,700 + 7,200) / 3 = 3,900;
    # p90 interpolated: rank 0.9 * (3 - 1) = 1.8 -> 2,700 + 0.8 * (7,200 - 2,700) = 6,300.
    assert (recovery["count"], recovery["open"]) == (3, 1)
    assert (recovery["median_seconds"], recovery["mean_seconds"]) == (2700.0, 3900.0)
    assert recovery["p90_seconds"] == pytest.approx(6300.0)
    restore = report["time_to_restore"]
    # Every resolved checkout incident is attributed here, so time to restore is the same three.
    assert (restore["count"], restore["open"], restore["median_seconds"]) == (3, 1, 2700.0)
    assert report["deployment_frequency"]["count"] == 6
