"""A writer process for test_pg_processes: ``python pg_concurrent_writer.py URL START STOP SEED``.

Builds the shared history (``history()``), takes events ``[START, STOP)``, shuffles them
with SEED, prints ``ready``, waits for a line on stdin, ingests them through
``MetricHub(storage=URL).ingest`` in batches of 250, prints ``done``, waits for another
line (every writer is done), then prints the DORA report as JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import UTC, datetime, timedelta

from metrichub_core import Change, Deployment, Event, Incident, MetricHub

T0 = datetime(2026, 3, 2, tzinfo=UTC)
SERVICES = ("api", "web", "batch", "auth")


def history(total: int = 10_000) -> list[Event]:
    """``total`` distinct events: deployments with their changes, and an incident every 10 deployments."""
    events: list[Event] = []
    n = 0
    while len(events) < total:
        service = SERVICES[n % len(SERVICES)]
        finished = T0 + timedelta(minutes=37 * n)
        events.append(
            Deployment(
                id=f"d{n}", source="ci", service=service, status="failure" if n % 17 == 0 else "success",
                started_at=finished - timedelta(minutes=4), finished_at=finished, change_ids=[f"c{n}"],
                labels={"team": "core" if n % 3 else "edge"},
            )
        )  # fmt: skip
        if len(events) < total:
            events.append(
                Change(
                    id=f"c{n}", source="gh", service=service, committed_at=finished - timedelta(minutes=90 + n % 600)
                )
            )
        if n % 10 == 0 and len(events) < total:
            events.append(
                Incident(
                    id=f"i{n}", source="pd", service=service, started_at=finished + timedelta(minutes=5),
                    resolved_at=finished + timedelta(minutes=5 + n % 240),
                )
            )  # fmt: skip
        n += 1
    return events


SINCE, UNTIL = T0, T0 + timedelta(days=120)
"""The window every writer reports on."""


async def main(url: str, start: int, stop: int, seed: int) -> None:
    events = history()[start:stop]
    random.Random(seed).shuffle(events)
    async with MetricHub(storage=url) as hub:
        print("ready", flush=True)
        sys.stdin.readline()
        for offset in range(0, len(events), 250):
            await hub.ingest(events[offset : offset + 250])
        print("done", flush=True)
        sys.stdin.readline()
        report = await hub.dora(since=SINCE, until=UNTIL)
        print(json.dumps(report.model_dump(mode="json"), sort_keys=True), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
