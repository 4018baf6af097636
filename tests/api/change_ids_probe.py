"""What one deployment's ``change_ids`` costs every later report (issue #19 item 3), on SQLite.

    .venv/bin/python tests/api/change_ids_probe.py [--days 180]

Loads the demo history, then times ``MetricHub.dora`` (a 30-day report of every service, no API
cache) with nothing added, after one deployment with ``MAX_CHANGE_IDS`` (10,000, the new
limit) change ids, and after one with 120,000 (the issue's write, which the models now refuse;
built here with ``model_construct`` to show what it used to cost). Prints the median of 5 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from metrichub_core import Deployment, MetricHub
from metrichub_core.demo import demo_events
from metrichub_core.models import MAX_CHANGE_IDS


async def _median_report_seconds(hub: MetricHub, now: datetime) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await hub.dora(since=now - timedelta(days=30), until=now)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _huge(count: int, now: datetime) -> Deployment:
    return Deployment.model_construct(
        id=f"huge-{count}",
        source="probe",
        service="checkout",
        environment="production",
        status="success",
        started_at=now - timedelta(days=2),
        finished_at=now - timedelta(days=2),
        commit_sha=None,
        change_ids=[f"c{number}" for number in range(count)],
        url=None,
        labels={},
    )


async def main(days: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with MetricHub(f"sqlite:///{Path(directory) / 'probe.db'}") as hub:
            await hub.ingest(list(demo_events(days=days, seed=19)))
            now = datetime.now(UTC)
            print(f"{days}-day demo, 30-day report: {await _median_report_seconds(hub, now) * 1000:.1f} ms")
            for count in (MAX_CHANGE_IDS, 120_000):
                started = time.perf_counter()
                await hub.ingest([_huge(count, now)])
                ingest = time.perf_counter() - started
                report = await _median_report_seconds(hub, now)
                print(f"+ one deployment with {count:,} change ids (ingest {ingest:.2f} s): {report * 1000:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=180)
    asyncio.run(main(parser.parse_args().days))
