"""PostgreSQL versus SQLite, same run, same machine: ingest rate and DORA report time.

    .venv/bin/python plugins/postgres/benchmarks/pg_bench.py [--scale 0.1] [--url postgresql://...]

Without ``--url`` it starts a throwaway PostgreSQL server (``TemporaryServer``) with
PostgreSQL's durable defaults (fsync, synchronous commit), as SQLite runs with
``synchronous=FULL``. It then measures:

1. ingest: ``MetricHub.ingest`` in batches of 10,000 (one transaction each, the
   derived DORA tables updated in it) of ``--events`` events (default 200,000 x scale), into
   each backend. Goal: >= 20,000 events/s on PostgreSQL. Then the time ``refresh_dora``
   still spends deriving (nothing since each batch derives its own: a release that derived
   lazily spent seconds here), and the rate of both together.
2. report: the core DORA benchmark's year of data (``benchmarks/dora_bench.py``:
   1,000,000 x scale deployments, 3M changes, 50k incidents, 50 services), generated
   once into SQLite as that benchmark does, copied row for row into PostgreSQL, the
   derived DORA tables built on both (``rebuild`` / ``REBUILD``, then ``ANALYZE``),
   and timed with that benchmark's own ``ours()``: the full-year report for all
   services (median of 3) and for one service (median over 10 services).
   Goal: PostgreSQL within 2x of SQLite. The reports must be identical, figure for
   figure. Without ``benchmarks/dora_bench.py`` this part is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import inspect
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
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


async def ingest_rate(url: str, events: list[Event]) -> tuple[float, float]:
    """Events/s of the ingest, and seconds the next DORA query then spends deriving them."""
    async with MetricHub(storage=url) as hub:
        began = time.perf_counter()
        for start in range(0, len(events), BATCH):
            await hub.ingest(events[start : start + BATCH])
        rate = len(events) / (time.perf_counter() - began)
        began = time.perf_counter()
        await hub.storage.refresh_dora()  # type: ignore[attr-defined]
        return rate, time.perf_counter() - began


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
        for name, url in (("sqlite", f"sqlite:///{directory}/ingest.db"), ("postgresql", pg("ingest"))):
            rate, derive = await ingest_rate(url, events)
            goal = "   (goal >= 20,000)" if name == "postgresql" else ""
            print(f"ingest  {name:<10}  {rate:12,.0f} events/s{goal}")
            whole = events_count / (events_count / rate + derive)
            print(f"        then derived by the next DORA query in {derive:.2f} s: {whole:,.0f} events/s in all")

        bench = core_dora_bench()
        if bench is None:
            print("# report: skipped, benchmarks/dora_bench.py is not in this tree")
            return
        sqlite_path = directory / "dora.db"
        began = time.perf_counter()
        counts = await generate_sqlite(bench, sqlite_path, arguments.scale)
        print(
            f"# report: {counts['deployments']:,} deployments, {counts['changes']:,} changes, "
            f"{counts['incidents']:,} incidents (generated into SQLite in {time.perf_counter() - began:.0f} s)"
        )
        pg_url = pg("dora")
        began = time.perf_counter()
        await copy_to_postgres(sqlite_path, pg_url)
        print(f"copied into PostgreSQL and derived its DORA tables in {time.perf_counter() - began:.0f} s")
        extra = {"scale": arguments.scale} if "scale" in inspect.signature(bench.ours).parameters else {}
        sqlite_result = await bench.ours(f"sqlite:///{sqlite_path}", arguments.repeats, **extra)
        pg_result = await bench.ours(pg_url, arguments.repeats, **extra)
        for label, key in (
            ("full year, all services", "seconds"),
            ("one service (median of 10)", "one_service_seconds"),
        ):
            sqlite_time, pg_time = sqlite_result[key], pg_result[key]
            print(
                f"report  {label:<27} sqlite {sqlite_time * 1000:8.1f} ms   postgresql {pg_time * 1000:8.1f} ms   "
                f"ratio {pg_time / sqlite_time:5.2f}x (goal <= 2)"
            )
        same = sqlite_result["report"].model_dump() == pg_result["report"].model_dump()
        exact = sqlite_result["exact"].model_dump() == pg_result["exact"].model_dump()
        print(f"reports identical: {same}; exact reports identical: {exact}")
        if not same:
            for name, value in sqlite_result["report"].model_dump(mode="json").items():
                theirs = pg_result["report"].model_dump(mode="json")[name]
                if theirs != value:
                    print(f"  {name}: sqlite {value} / postgresql {theirs}")


async def generate_sqlite(bench: Any, path: Path, scale: float) -> dict[str, int]:
    """The core DORA benchmark's data and derived tables, exactly as its ``main`` builds them."""
    from metrichub_core.storage.sqlite import SQLiteStorage

    storage = SQLiteStorage(f"sqlite:///{path}")
    await storage.open()
    await storage.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    bench.prepare(conn)
    conn.execute("BEGIN")
    counts: dict[str, int] = bench.generate(conn, scale)
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    bench.rebuild(conn)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return counts


async def copy_to_postgres(path: Path, url: str) -> None:
    """Copy SQLite's event rows into PostgreSQL's event tables, then build the derived tables."""
    from metrichub_plugin_postgres._dora_schema import REBUILD

    from metrichub_core.dora.reference import REWORK_LABEL_VALUES

    async with MetricHub(storage=url) as hub:  # creates the schema
        assert (await hub.storage.health()).backend == "postgresql"
    source = sqlite3.connect(path)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        async with conn.cursor() as cursor:
            async with cursor.copy(
                "COPY deployments (source, id, service, environment, status, started_at, finished_at, listed_at, "
                "commit_sha, change_ids, url, labels, rework) FROM STDIN"
            ) as copy:
                for row in source.execute(
                    "SELECT source, id, service, environment, status, started_at, finished_at, listed_at, "
                    "commit_sha, change_ids, url, labels FROM deployments"
                ):
                    labels = json.loads(row[11])
                    rework = str(labels.get("rework", "")).strip().lower() in REWORK_LABEL_VALUES
                    await copy.write_row((*row, rework))
            async with cursor.copy(
                "COPY changes (source, id, service, committed_at, merged_at, url) FROM STDIN"
            ) as copy:
                for row in source.execute("SELECT source, id, service, committed_at, merged_at, url FROM changes"):
                    await copy.write_row(row)
            async with cursor.copy(
                "COPY incidents (source, id, service, environment, started_at, resolved_at, severity, caused_by, "
                "deployment_related, title, url) FROM STDIN"
            ) as copy:
                for row in source.execute(
                    "SELECT source, id, service, environment, started_at, resolved_at, severity, caused_by, "
                    "deployment_related, title, url FROM incidents"
                ):
                    await copy.write_row((*row[:8], bool(row[8]), *row[9:]))
        await conn.commit()
        for statement in REBUILD:
            await conn.execute(statement)
        await conn.commit()
        await conn.set_autocommit(True)
        await conn.execute("VACUUM ANALYZE")
    source.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the default sizes (e.g. 0.1)")
    parser.add_argument("--events", type=int, default=0, help="events for the ingest rate (default 200,000 x scale)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="an existing PostgreSQL database (schemas ingest/report are created in it)")
    asyncio.run(main(parser.parse_args()))
