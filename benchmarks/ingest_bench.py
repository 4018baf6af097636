"""Ingest throughput: ``hub.ingest`` into SQLite versus raw ``sqlite3.executemany``.

Both write the same rows, in batches of 10,000, into the same schema (WAL,
synchronous=FULL, one transaction per batch) in the same run; the ratio is what
matters, the absolute rate depends on the machine.

    .venv/bin/python benchmarks/ingest_bench.py [--events 300000]

Goal: >= 50,000 events/s and >= 25 % of the raw rate.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from metrichub_core import Change, Deployment, Event, Incident, MetricHub
from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.events import COLUMNS, Rows
from metrichub_core.storage.sqlite._schema import migrate, transaction

BATCH = 10_000


def make_events(count: int) -> list[Event]:
    """A realistic mix: three changes per deployment, an incident per 50 deployments."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[Event] = []
    n = 0
    while len(events) < count:
        finished = start + timedelta(minutes=n)
        changes = [f"c{n}-{i}" for i in range(3)]
        events += [
            Change(id=change, source="bench", service=f"svc{n % 50}", committed_at=finished - timedelta(hours=i + 1))
            for i, change in enumerate(changes)
        ]
        events.append(
            Deployment(
                id=f"d{n}", source="bench", service=f"svc{n % 50}", status="success" if n % 7 else "failure",
                started_at=finished - timedelta(minutes=5), finished_at=finished, change_ids=changes,
                labels={"team": f"t{n % 5}"},
            )
        )  # fmt: skip
        if n % 50 == 0:
            events.append(Incident(id=f"i{n}", source="bench", service=f"svc{n % 50}", started_at=finished))
        n += 1
    return events[:count]


async def hub_rate(events: list[Event], directory: Path) -> float:
    async with MetricHub(storage=f"sqlite:///{directory}/hub.db") as hub:
        began = time.perf_counter()
        for start in range(0, len(events), BATCH):
            await hub.ingest(events[start : start + BATCH])
        return len(events) / (time.perf_counter() - began)


def raw_rate(events: list[Event], directory: Path) -> float:
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    migrate(conn)
    # Rows are prepared outside the clock: the baseline is the database's own speed.
    batches = [Rows(events[start : start + BATCH], SQLITE).tables() for start in range(0, len(events), BATCH)]
    inserts = {table: f"INSERT INTO {table} VALUES ({SQLITE.marks(len(names))})" for table, names in COLUMNS.items()}
    began = time.perf_counter()
    for tables in batches:
        with transaction(conn):
            for table, rows in tables:
                conn.executemany(inserts[table], rows)
    elapsed = time.perf_counter() - began
    conn.close()
    return len(events) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    events = make_events(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        raw = raw_rate(events, Path(tmp))
        hub = asyncio.run(hub_rate(events, Path(tmp)))
    print(f"events                 {len(events):>12,}")
    print(f"raw executemany        {raw:>12,.0f} events/s")
    print(f"hub.ingest (SQLite)    {hub:>12,.0f} events/s")
    print(f"ratio hub/raw          {hub / raw:>12.1%}   (goal >= 25 %)")
    print(f"goal >= 50,000/s       {'met' if hub >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
