"""A backfill at scale: ``hub.ingest`` plus derivation against raw inserts, in one run.

A stream of mixed events (each deployment with 3 changes in ``change_ids``, merged, 5 % of the
events incidents, 50 services, a deployment every 2 minutes) goes through ``hub.ingest``
in batches of 20,000, then the first full-range DORA report is asked. On SQLite each batch
is first written raw, so that the raw writers and the hub see the shared machine's load
alike: ``sqlite3.executemany`` upserts (WAL, synchronous=FULL, a transaction per batch) into
MetricHub's own event tables (their keys and indexes) and into tables keyed by
``(source, id)`` alone. On PostgreSQL (durable defaults), before the hub's run, ``COPY`` and
``executemany`` upserts into keyed tables. Then the backfill goes on for 200,000 more events while a
second hub on the same database serves ``GET /api/v1/metrics/dora`` (no cache) every half
second (``--api-every``); the slowest answer is printed. (Those reports are not made
during the timed load: each costs the process a fraction of a second of CPU.)

    .venv/bin/python benchmarks/ingest_scale_bench.py [--events 1000000] [--backends sqlite,postgresql]
        [--api-every 0 --pg-statements 12]   # where PostgreSQL's server time goes, per statement

Goals (issue 18): SQLite all-in (ingest + derivation) >= 30 % of raw executemany, the last
200k events' ingest rate within 20 % of the first 200k, the first report <= 2 s; PostgreSQL
all-in >= 25,000 events/s and first report <= 2 s; a report through the API during the
backfill <= 2 s. Events are generated per batch outside the clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from metrichub_core import Change, Deployment, Event, Incident, MetricHub
from metrichub_core.api import create_app
from metrichub_core.storage.sql.dialect import POSTGRES, SQLITE, Dialect
from metrichub_core.storage.sql.events import COLUMNS, Rows, upsert_sql
from metrichub_core.storage.sqlite._schema import migrate

START = datetime(2025, 1, 1, tzinfo=UTC)
SERVICES = 50
SPAN = 200_000
"""The first and last this many events are timed on their own (does cost grow with the store?)."""
BACKFILL_MORE = 200_000
"""Events ingested after the timed load while reports are asked through the API."""


def events(count: int) -> Iterator[Event]:
    """``count`` events: per deployment its 3 changes, then it; every 20th event an incident."""
    produced = 0
    n = 0
    while True:
        service = f"svc{n % SERVICES}"
        finished = START + timedelta(minutes=2 * n)
        changes = [f"c{n}-{i}" for i in range(3)]
        unit: list[Event] = [  # merged half an hour before the deployment: the lead-time breakdown is derived too
            Change(
                id=change, source="bench", service=service, committed_at=finished - timedelta(hours=i + 1),
                merged_at=finished - timedelta(minutes=30),
            )
            for i, change in enumerate(changes)
        ]  # fmt: skip
        unit.append(
            Deployment(
                id=f"d{n}", source="bench", service=service, status="success" if n % 7 else "failure",
                started_at=finished - timedelta(minutes=5), finished_at=finished, change_ids=changes,
                labels={"team": f"t{n % 5}"},
            )
        )  # fmt: skip
        for event in unit:
            if produced % 20 == 19:
                yield Incident(
                    id=f"i{n}", source="bench", service=service, started_at=finished + timedelta(minutes=3),
                    resolved_at=finished + timedelta(minutes=50) if n % 3 else None,
                    caused_by=f"d{n}" if n % 2 else None,
                )  # fmt: skip
                produced += 1
                if produced == count:
                    return
            yield event
            produced += 1
            if produced == count:
                return
        n += 1


def batches(count: int, size: int, skip: int = 0) -> Iterator[list[Event]]:
    stream = events(count)
    for _ in zip(range(skip), stream, strict=False):
        pass
    while batch := [event for _, event in zip(range(size), stream, strict=False)]:
        yield batch


def end_of(count: int) -> datetime:
    return START + timedelta(minutes=2 * (count // 4 + 2), days=1)


@dataclass
class Run:
    """Seconds per batch of ``hub.ingest``, the first report after the load, API latencies, raw rates."""

    events: int = 0
    batch_seconds: list[tuple[int, float]] = field(default_factory=list)
    report_seconds: float = 0.0
    api_seconds: list[float] = field(default_factory=list)
    raw: dict[str, float] = field(default_factory=dict)

    def rate(self, first: bool) -> float:
        chosen, counted = 0.0, 0
        for size, seconds in self.batch_seconds if first else reversed(self.batch_seconds):
            if counted >= SPAN:
                break
            chosen, counted = chosen + seconds, counted + size
        return counted / chosen

    @property
    def ingest_seconds(self) -> float:
        return sum(seconds for _, seconds in self.batch_seconds)

    @property
    def all_in(self) -> float:
        return self.events / (self.ingest_seconds + self.report_seconds)


class Raw:
    """A raw writer of the same batches: ``write`` returns the seconds one batch took."""

    name: str
    dialect: Dialect

    def write(self, tables: list[tuple[str, list[tuple[Any, ...]]]]) -> float:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


async def hub_run(url: str, count: int, size: int, api_every: float, raws: list[Raw]) -> Run:
    """Each batch goes to the raw writers, then through ``hub.ingest``: all see the machine's load alike."""
    run = Run(count)
    raw_seconds = dict.fromkeys((raw.name for raw in raws), 0.0)
    done = asyncio.Event()
    async with MetricHub(storage=url) as hub:
        await hub.ingest(next(batches(1, 1)))  # opens and migrates the database before the clock
        for batch in batches(count, size):
            for raw in raws:
                raw_seconds[raw.name] += raw.write(Rows(batch, raw.dialect).tables())  # rows made off the clock
            began = time.perf_counter()
            await hub.ingest(batch)
            run.batch_seconds.append((len(batch), time.perf_counter() - began))
        began = time.perf_counter()
        await hub.dora(since=START, until=end_of(count))
        run.report_seconds = time.perf_counter() - began
        if api_every:  # the backfill goes on for BACKFILL_MORE events while the API answers reports
            poller = asyncio.create_task(api_reports(url, count, done, run.api_seconds, api_every))
            for batch in batches(count + BACKFILL_MORE, size, skip=count):
                await hub.ingest(batch)
            done.set()
            await poller
    run.raw = raw_rates(raws, count, raw_seconds)
    return run


def raw_rates(raws: list[Raw], count: int, seconds: dict[str, float]) -> dict[str, float]:
    for raw in raws:
        raw.close()
    return {name: count / spent for name, spent in seconds.items()}


def raw_run(raws: list[Raw], count: int, size: int) -> dict[str, float]:
    """The raw writers alone, batch after batch (PostgreSQL: interleaved with the hub, their WAL
    would trigger the server's checkpoints during the hub's batches)."""
    seconds = dict.fromkeys((raw.name for raw in raws), 0.0)
    for batch in batches(count, size):
        for raw in raws:
            seconds[raw.name] += raw.write(Rows(batch, raw.dialect).tables())
    return raw_rates(raws, count, seconds)


async def api_reports(url: str, count: int, done: asyncio.Event, latencies: list[float], every: float) -> None:
    """Every ``every`` seconds until ``done``: the full-range report through the API of another hub (no cache)."""
    app = create_app(MetricHub(storage=url), schedule=False, cache_ttl_seconds=0)
    query = f"/api/v1/metrics/dora?since={START.date()}&until={end_of(count).date()}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        while not done.is_set():
            began = time.perf_counter()
            response = await client.get(query, timeout=120)
            latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                print(f"  API answered {response.status_code} after {latencies[-1]:.1f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every)
        await app.state.metrichub.hub.close()


def keyed_tables(dialect: Dialect) -> list[str]:
    return [
        f"CREATE TABLE {table} ("
        + ", ".join(f"{name} {dialect.types[kind]}" for name, kind in columns)
        + ", PRIMARY KEY (source, id))"
        for table, columns in COLUMNS.items()
    ]


class RawSQLite(Raw):
    """Upserts by ``executemany`` (WAL, synchronous=FULL), one transaction per batch, into MetricHub's
    event tables (``schema``: their keys and indexes) or into tables with the key alone."""

    dialect = SQLITE

    def __init__(self, path: Path, schema: bool) -> None:
        self.name = "raw executemany, " + ("MetricHub's event tables" if schema else "keyed tables")
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        if schema:
            migrate(self.conn)
        else:
            for statement in keyed_tables(SQLITE):
                self.conn.execute(statement)

    def write(self, tables: list[tuple[str, list[tuple[Any, ...]]]]) -> float:
        began = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        for table, rows in tables:
            self.conn.executemany(upsert_sql(SQLITE, table), rows)
        self.conn.execute("COMMIT")
        return time.perf_counter() - began

    def close(self) -> None:
        self.conn.close()


class RawPostgres(Raw):
    """``COPY`` or ``executemany`` upserts into keyed tables, one transaction per batch."""

    dialect = POSTGRES

    def __init__(self, url: str, copy: bool) -> None:
        import psycopg

        self.name = "raw COPY (durable defaults)" if copy else "raw executemany (upsert)"
        self.copy = copy
        self.conn = psycopg.connect(url, autocommit=True)
        for statement in keyed_tables(POSTGRES):
            self.conn.execute(statement)

    def write(self, tables: list[tuple[str, list[tuple[Any, ...]]]]) -> float:
        began = time.perf_counter()
        with self.conn.transaction(), self.conn.cursor() as cursor:
            for table, rows in tables:
                values = [tuple(_pg(value) for value in row) for row in rows]
                if self.copy:
                    names = ", ".join(name for name, _ in COLUMNS[table])
                    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as stream:
                        for row in values:
                            stream.write_row(row)
                else:
                    cursor.executemany(POSTGRES.upsert(table, COLUMNS[table], ("source", "id")), values)
        return time.perf_counter() - began

    def close(self) -> None:
        self.conn.close()


def _pg(value: object) -> object:
    from psycopg.types.json import Jsonb

    return Jsonb(value) if isinstance(value, list | dict) else value


def table(backend: str, run: Run) -> None:
    def row(name: str, value: str) -> None:
        print(f"| {name:<48} | {value:>20} |")

    print(f"\n## {backend}: {run.events:,} events in batches of {run.batch_seconds[0][0]:,}\n")
    row("", "rate")
    print(f"|{'-' * 50}|{'-' * 22}|")
    for name, rate in run.raw.items():
        row(name, f"{rate:,.0f} events/s")
    first, last = run.rate(True), run.rate(False)
    row(f"hub.ingest, first {SPAN // 1000}k events", f"{first:,.0f} events/s")
    row(f"hub.ingest, last {SPAN // 1000}k events", f"{last:,.0f} events/s")
    row("hub.ingest, all", f"{run.events / run.ingest_seconds:,.0f} events/s")
    row("the first hub.dora() after the load", f"{run.report_seconds:.2f} s")
    row("all-in (ingest + derivation)", f"{run.all_in:,.0f} events/s")
    slowest = max(run.api_seconds, default=float("nan"))
    row(f"API report during a backfill (slowest of {len(run.api_seconds)})", f"{slowest:.2f} s")
    print()
    for name, rate in run.raw.items():
        print(f"all-in / {name}: {run.all_in / rate:.1%}")
    print(f"last {SPAN // 1000}k / first {SPAN // 1000}k: {last / first:.1%}")


def server_statements(server: Any, top: int, events: int) -> None:
    """The ``top`` statements of the hub's database by server time (``pg_stat_statements``), per 200k events."""
    with server.connect("hub") as conn:
        rows = conn.execute(
            # A statement naming a temporary table has an id per connection: summed by its text.
            "SELECT sum(total_exec_time) / 1000, sum(calls)::int8, regexp_replace(query, '\\s+', ' ', 'g') AS text "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'hub') "
            "GROUP BY text ORDER BY 1 DESC LIMIT %s",
            (top,),
        ).fetchall()
    print(f"\nPostgreSQL server time per statement, per {SPAN // 1000}k of the {events:,} events written:\n")
    for seconds, calls, query in rows:
        print(f"{seconds * SPAN / events:8.2f} s {calls:6d} calls  {query[:100]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--api-every", type=float, default=0.5, help="seconds between API reports (0: none)")
    parser.add_argument(
        "--pg-statements",
        type=int,
        default=0,
        help="print this many PostgreSQL statements that took the most server time (pg_stat_statements; "
        "with --api-every 0 they are the load's and the first report's alone)",
    )
    args = parser.parse_args()
    backends = args.backends.split(",")
    sizes = (args.events, args.batch)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if "sqlite" in backends:
            raws: list[Raw] = [RawSQLite(Path(tmp, "schema.db"), True), RawSQLite(Path(tmp, "keyed.db"), False)]
            table("SQLite", asyncio.run(hub_run(f"sqlite:///{tmp}/hub.db", *sizes, args.api_every, raws)))
        if "postgresql" in backends:
            from metrichub_plugin_postgres.testing import TemporaryServer

            server = stack.enter_context(TemporaryServer(durable=True))
            if args.pg_statements:
                with server.connect() as conn:
                    conn.execute("ALTER SYSTEM SET shared_preload_libraries = pg_stat_statements")
                server.restart()
            for name in ("copy", "many", "hub"):
                server.create_database(name)
            if args.pg_statements:
                with server.connect("hub") as conn:
                    conn.execute("CREATE EXTENSION pg_stat_statements")
            raw = raw_run([RawPostgres(server.url("copy"), True), RawPostgres(server.url("many"), False)], *sizes)
            pg = asyncio.run(hub_run(server.url("hub"), *sizes, args.api_every, []))
            pg.raw = raw
            table("PostgreSQL", pg)
            if args.pg_statements:
                written = args.events + (BACKFILL_MORE if args.api_every else 0)
                server_statements(server, args.pg_statements, written)


if __name__ == "__main__":
    main()
