"""PostgreSQL versus SQLite, same run, same machine: ingest rate and DORA report time.

    .venv/bin/python plugins/postgres/benchmarks/pg_bench.py [--scale 0.1] [--url postgresql://...]

Without ``--url`` it starts a throwaway PostgreSQL server (``TemporaryServer``) with
PostgreSQL's durable defaults (fsync, synchronous commit), as SQLite runs with
``synchronous=FULL``. It then measures:

1. ingest: ``MetricHub.ingest`` in batches of 10,000 (one transaction each, derived
   DORA data included) of ``--events`` events (default 200,000 x scale), into each backend.
   Goal: >= 20,000 events/s on PostgreSQL.
2. report: the DORA report over the whole history of ``--deployments`` deployments
   (default 1,000,000 x scale; three changes each, an incident every 50), loaded into
   both backends, then ``hub.dora`` timed (best of 3) for all services and for one.
   Goal: PostgreSQL within 2x of SQLite. When the core's ``benchmarks/dora_bench.py``
   exists, its dataset builder is used for the history.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from metrichub_plugin_postgres.testing import TemporaryServer

from metrichub_core import Change, Deployment, Event, Incident, MetricHub

BATCH = 10_000
START = datetime(2024, 1, 1, tzinfo=UTC)


def history(deployments: int, *, offset: int = 0) -> Iterator[Event]:
    """Deployments every 2 minutes over 50 services, three changes each, an incident every 50."""
    for n in range(offset, offset + deployments):
        service = f"svc{n % 50}"
        finished = START + timedelta(minutes=2 * n)
        changes = [f"c{n}-{i}" for i in range(3)]
        for i, change in enumerate(changes):
            yield Change(id=change, source="bench", service=service, committed_at=finished - timedelta(hours=i + 1))
        yield Deployment(
            id=f"d{n}", source="bench", service=service, status="success" if n % 7 else "failure",
            started_at=finished - timedelta(minutes=5), finished_at=finished, change_ids=changes,
            labels={"team": f"t{n % 5}"},
        )  # fmt: skip
        if n % 50 == 0:
            yield Incident(
                id=f"i{n}", source="bench", service=service, started_at=finished + timedelta(minutes=3),
                resolved_at=finished + timedelta(minutes=50),
            )  # fmt: skip


def batches(events: Iterator[Event]) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def ingest_rate(url: str, events: list[Event]) -> float:
    async with MetricHub(storage=url) as hub:
        began = time.perf_counter()
        for start in range(0, len(events), BATCH):
            await hub.ingest(events[start : start + BATCH])
        return len(events) / (time.perf_counter() - began)


async def load(url: str, deployments: int) -> float:
    async with MetricHub(storage=url) as hub:
        began = time.perf_counter()
        for batch in batches(history(deployments)):
            await hub.ingest(batch)
        return time.perf_counter() - began


async def report_seconds(url: str, repeats: int, **query: Any) -> tuple[float, dict[str, Any]]:
    async with MetricHub(storage=url) as hub:
        best = float("inf")
        report: dict[str, Any] = {}
        for _ in range(repeats):
            began = time.perf_counter()
            report = (await hub.dora(**query)).model_dump(mode="json")
            best = min(best, time.perf_counter() - began)
        return best, report


def core_dora_bench() -> Any | None:
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "dora_bench.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("dora_bench", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dora_bench"] = module
    spec.loader.exec_module(module)
    return module


async def main(arguments: argparse.Namespace) -> None:
    events_count = arguments.events or int(200_000 * arguments.scale)
    deployments = arguments.deployments or int(1_000_000 * arguments.scale)
    with contextlib.ExitStack() as stack:
        if arguments.url:
            base = arguments.url
        else:
            server = stack.enter_context(TemporaryServer(durable=True))
            base = server.url("postgres")
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))

        def pg(database: str) -> str:
            if arguments.url:
                return f"{base}{'&' if '?' in base else '?'}schema={database}"
            server.create_database(database)
            return server.url(database)

        print(f"# ingest: {events_count:,} events in batches of {BATCH:,}")
        events = list(history(events_count // 4 + 1))[:events_count]
        sqlite_rate = await ingest_rate(f"sqlite:///{directory}/ingest.db", events)
        pg_rate = await ingest_rate(pg("ingest"), events)
        print(f"ingest  sqlite      {sqlite_rate:12,.0f} events/s")
        print(f"ingest  postgresql  {pg_rate:12,.0f} events/s   (goal >= 20,000)")

        print(f"# report: {deployments:,} deployments, whole history, best of {arguments.repeats}")
        sqlite_url, pg_url = f"sqlite:///{directory}/report.db", pg("report")
        for name, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
            print(f"load    {name:<11} {await load(url, deployments):12.1f} s")
        until = START + timedelta(minutes=2 * deployments + 60)
        for label, query in (
            ("all services", {"since": START, "until": until}),
            ("one service", {"since": START, "until": until, "service": "svc7"}),
            ("last 30 days", {"since": until - timedelta(days=30), "until": until}),
        ):
            sqlite_time, sqlite_report = await report_seconds(sqlite_url, arguments.repeats, **query)
            pg_time, pg_report = await report_seconds(pg_url, arguments.repeats, **query)
            same = "same report" if sqlite_report == pg_report else "REPORTS DIFFER"
            print(
                f"report  {label:<13} sqlite {sqlite_time * 1000:9.1f} ms   postgresql {pg_time * 1000:9.1f} ms   "
                f"ratio {pg_time / sqlite_time:5.2f}x (goal <= 2)   {same}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the default sizes (e.g. 0.1)")
    parser.add_argument("--events", type=int, default=0, help="events for the ingest rate (default 200,000 x scale)")
    parser.add_argument("--deployments", type=int, default=0, help="deployments for the report (default 1M x scale)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="an existing PostgreSQL database (schemas ingest/report are created in it)")
    asyncio.run(main(parser.parse_args()))
