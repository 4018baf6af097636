"""The DORA report on a year of data in SQLite, against Four-Keys-style SQL on the same data.

Generates 1,000,000 deployments, 3,000,000 changes (90 % with a merge time, a few of them
before the commit or after the deployment) and ~50,000 incidents over 50
services and one year (``--scale`` multiplies the counts), written straight into the
SQLite event tables, then derives the DORA tables once (what ingest maintains
incrementally). In the same run it times:

- baseline: Four-Keys-style SQL at report time over the event tables (lead-time
  median and p90 by window functions over changes joined to the deployments that
  list them, counts, prior-deployment attribution of incidents by correlated subquery);
- ours: ``MetricHub.dora`` for the whole year and all services, and for one service;

and checks every figure of our report (the lead-time breakdown included) against the exact
values (the same facts with exact quantiles), and the baseline's figures against ours where
the rules agree.

    .venv/bin/python benchmarks/dora_bench.py                 # full size (setup takes minutes)
    .venv/bin/python benchmarks/dora_bench.py --scale 0.05    # a quick run
    .venv/bin/python benchmarks/dora_bench.py --db /tmp/dora.db --keep   # reuse a generated database

Goals: report >= 10x faster than the baseline, one service <= 50 ms, every figure
within 1 % of exact, report peak memory <= 500 MB. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from metrichub_core import Change, Deployment, Event, Incident, MetricHub
from metrichub_core.dora import DoraScope, FactsRequest, build_report
from metrichub_core.dora._protocol import DoraOptions, Window
from metrichub_core.dora.profiles import get_profile
from metrichub_core.storage.sqlite import SQLiteStorage
from metrichub_core.storage.sqlite._dora_derive import prepare, rebuild

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
US = 1_000_000
SERVICES = 50


def micros(moment: datetime) -> int:
    return int(moment.timestamp()) * US


def generate(conn: sqlite3.Connection, scale: float, seed: int = 42) -> dict[str, int]:
    """Write deployments, changes and incidents for a year; deployments ship the changes since the last one."""
    rng = random.Random(seed)
    merges = random.Random(seed + 1)  # its own stream: the other columns stay those of earlier runs
    start, end = micros(START), micros(END)
    per_service = max(1, round(1_000_000 * scale / SERVICES))
    incidents_total = max(1, round(50_000 * scale))
    counts = {"deployments": 0, "changes": 0, "incidents": 0}
    last_success: dict[int, list[tuple[int, str]]] = {}

    def rows() -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        for service in range(SERVICES):
            name = f"svc{service:02d}"
            times = sorted(rng.randrange(start, end) for _ in range(per_service))
            successes: list[tuple[int, str]] = []
            pending: list[str] = []
            deployments: list[tuple[Any, ...]] = []
            changes: list[tuple[Any, ...]] = []
            labels = json.dumps({"team": f"team{service % 10}"})
            for n, finished in enumerate(times):
                dep_id = f"{name}-d{n}"
                # about three changes a deployment, committed minutes to days before it
                for _ in range(rng.choice((2, 3, 3, 4))):
                    change_id = f"{name}-c{counts['changes']}"
                    counts["changes"] += 1
                    lead = int(rng.lognormvariate(9.2, 1.4) * US)
                    changes.append(
                        ("github", change_id, name, finished - lead, merged_at(merges, finished, lead), None)
                    )
                    pending.append(change_id)
                status = "failure" if rng.random() < 0.05 else "success"
                shipped = json.dumps(pending)
                deployments.append((
                    "jenkins", dep_id, name, "production", status, finished - 300 * US, finished, finished, None,
                    shipped, None, labels, 0,
                ))  # fmt: skip
                if status == "success":  # a failed run's changes ship with the next successful one
                    pending = []
                    successes.append((finished, dep_id))
            counts["deployments"] += len(deployments)
            last_success[service] = successes
            yield deployments, changes

    for deployments, changes in rows():
        conn.executemany("INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)", deployments)
        conn.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?, NULL)", changes)
    incidents = []
    for n in range(incidents_total):
        service = rng.randrange(SERVICES)
        started = rng.randrange(start, end)
        resolved = None if rng.random() < 0.03 else started + int(rng.lognormvariate(8, 1.2) * US)
        caused_by = None
        if rng.random() < 0.2 and last_success[service]:
            caused_by = rng.choice(last_success[service])[1]
        related = int(rng.random() < 0.8)
        incidents.append((
            "pagerduty", f"i{n}", f"svc{service:02d}", "production", started, resolved, None, caused_by, related,
            None, None,
        ))  # fmt: skip
    conn.executemany("INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)", incidents)
    counts["incidents"] = len(incidents)
    return counts


def merged_at(rng: random.Random, finished: int, lead: int) -> int | None:
    """A change's merge: none for 10 %, 1 % before its commit, 1 % after its deployment, else in between."""
    draw = rng.random()
    if draw < 0.1:
        return None
    if draw < 0.11:
        return finished - lead - rng.randrange(1, 3_600) * US
    if draw < 0.12:
        return finished + rng.randrange(1, 3_600) * US
    return finished - int(lead * rng.random() ** 2)  # mostly nearer the deployment than the commit


BASELINE_SQL = {
    # Deployment frequency: successful production deployments in the window, and deployment days.
    "deployments": """
        SELECT count(DISTINCT id), count(DISTINCT listed_at / 86400000000) FROM deployments
        WHERE status = 'success' AND environment = 'production' AND listed_at >= :since AND listed_at < :until
    """,
    # Lead time: changes joined to the deployments listing them, median and p90 by window functions.
    "lead_time": """
        WITH pairs AS (
            SELECT (d.listed_at - c.committed_at) / 1e6 AS lead
            FROM deployments d, json_each(d.change_ids) j
            JOIN changes c ON c.service = d.service AND c.id = j.value
            WHERE d.status = 'success' AND d.environment = 'production'
              AND d.listed_at >= :since AND d.listed_at < :until AND d.listed_at >= c.committed_at
        ), ranked AS (
            SELECT lead, row_number() OVER (ORDER BY lead) - 1 AS position, count(*) OVER () AS n,
                   avg(lead) OVER () AS mean
            FROM pairs
        )
        SELECT position, lead, n, mean FROM ranked
        WHERE position IN (CAST((n - 1) * 0.5 AS INTEGER), CAST((n - 1) * 0.5 AS INTEGER) + 1,
                           CAST((n - 1) * 0.9 AS INTEGER), CAST((n - 1) * 0.9 AS INTEGER) + 1)
    """,
    # Change failure rate: each incident to the last successful deployment before it (correlated subquery).
    "change_failure_rate": """
        SELECT count(DISTINCT cause) FROM (
            SELECT coalesce(
                (SELECT d.id FROM deployments d WHERE d.service = i.service AND d.id = i.caused_by LIMIT 1),
                (SELECT d.id FROM deployments d
                 WHERE d.service = i.service AND d.environment = i.environment AND d.status = 'success'
                   AND d.listed_at < i.started_at ORDER BY d.listed_at DESC LIMIT 1)
            ) AS cause
            FROM incidents i WHERE i.deployment_related = 1 AND i.environment = 'production'
        ) attributed JOIN deployments d ON d.id = attributed.cause
        WHERE d.status = 'success' AND d.listed_at >= :since AND d.listed_at < :until
    """,
    # Time to restore: median of resolved - started by window functions.
    "time_to_restore": """
        WITH durations AS (
            SELECT (resolved_at - started_at) / 1e6 AS seconds FROM incidents
            WHERE environment = 'production' AND resolved_at IS NOT NULL
              AND started_at >= :since AND started_at < :until
        ), ranked AS (
            SELECT seconds, row_number() OVER (ORDER BY seconds) - 1 AS position, count(*) OVER () AS n
            FROM durations
        )
        SELECT position, seconds, n, NULL FROM ranked
        WHERE position IN (CAST((n - 1) * 0.5 AS INTEGER), CAST((n - 1) * 0.5 AS INTEGER) + 1)
    """,
}


def baseline(path: Path, since: datetime, until: datetime) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    params = {"since": micros(since), "until": micros(until)}
    try:
        deployments, days = conn.execute(BASELINE_SQL["deployments"], params).fetchone()
        lead = conn.execute(BASELINE_SQL["lead_time"], params).fetchall()
        failed = conn.execute(BASELINE_SQL["change_failure_rate"], params).fetchone()[0]
        restore = conn.execute(BASELINE_SQL["time_to_restore"], params).fetchall()
    finally:
        conn.close()
    return {
        "deployments": deployments,
        "deploy_days": days,
        "lead_median": _percentile(lead, 0.5),
        "lead_p90": _percentile(lead, 0.9),
        "lead_count": lead[0][2] if lead else 0,
        "lead_mean": lead[0][3] if lead else None,
        "failed": failed,
        "restore_median": _percentile(restore, 0.5),
    }


def _percentile(rows: list[tuple[Any, ...]], q: float) -> float | None:
    """PERCENTILE_CONT from the rows at the two positions around the rank."""
    if not rows:
        return None
    at = {position: value for position, value, _, _ in rows}
    rank = (rows[0][2] - 1) * q
    low = at[math.floor(rank)]
    high = at.get(math.floor(rank) + 1, low)
    return float(low + (high - low) * (rank - math.floor(rank)))


def timed(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def figures(report: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number of a report by its dotted path (``lead_time.breakdown.merge_to_deploy.p90_seconds``)."""
    flat: dict[str, float] = {}
    for key, value in report.items():
        if isinstance(value, dict):
            flat.update(figures(value, f"{prefix}{key}."))
        elif prefix and isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def new_day_events(scale: float) -> list[Event]:
    """One more day (30 December) of deployments, changes and incidents at the data set's rate."""
    rng = random.Random(7)
    day = datetime(2025, 12, 30, tzinfo=UTC)
    events: list[Event] = []
    for n in range(max(1, round(1_000_000 * scale / 365))):
        service = f"svc{n % SERVICES:02d}"
        finished = day + timedelta(seconds=rng.randrange(86_400))
        changes = [f"new-{n}-{i}" for i in range(3)]
        leads = [timedelta(seconds=rng.lognormvariate(9.2, 1.4)) for _ in changes]
        events += [
            Change(id=change, source="github", service=service, committed_at=finished - lead,
                   merged_at=finished - lead / 3)
            for change, lead in zip(changes, leads, strict=True)
        ]  # fmt: skip
        events.append(
            Deployment(id=f"new-d{n}", source="jenkins", service=service, status="success",
                       started_at=finished - timedelta(minutes=5), finished_at=finished, change_ids=changes)
        )  # fmt: skip
        if n % 20 == 0:
            events.append(Incident(id=f"new-i{n}", source="pagerduty", service=service,
                                   started_at=finished + timedelta(minutes=10),
                                   resolved_at=finished + timedelta(minutes=70)))  # fmt: skip
    return events


async def ours(url: str, runs: int, scale: float) -> dict[str, Any]:
    async with MetricHub(storage=url) as hub:
        await hub.dora(since=START, until=END)  # warm the page cache, as the baseline's first run does
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            report = await hub.dora(since=START, until=END)
            samples.append(time.perf_counter() - started)
        one = []
        for service in range(0, SERVICES, 5):
            started = time.perf_counter()
            await hub.dora(since=START, until=END, service=f"svc{service:02d}")
            one.append(time.perf_counter() - started)
        started = time.perf_counter()
        await hub.dora_trend(since=START, until=END, bucket="week")
        trend_seconds = time.perf_counter() - started
        tracemalloc.start()
        await hub.dora(since=START, until=END)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # The exact figures: the same facts with exact quantiles, through the same engine.
        scope, options, window = DoraScope(), DoraOptions(), Window(START, END)
        (facts,) = await hub.storage.dora_facts(
            FactsRequest(scope=scope, windows=(window,), options=options, exact_limit=10**12)
        )
        exact = build_report(window, scope, get_profile(None), options, facts)
        one_exact = []
        for service in (0, 25):
            scope = DoraScope(service=f"svc{service:02d}")
            approx = await hub.dora(since=START, until=END, service=scope.service)
            (facts,) = await hub.storage.dora_facts(
                FactsRequest(scope=scope, windows=(window,), options=options, exact_limit=10**12)
            )
            one_exact.append((approx, build_report(window, scope, get_profile(None), options, facts)))
        # A day of new events through the public ingest, then the first report (which derives them).
        day = new_day_events(scale)
        started = time.perf_counter()
        for start in range(0, len(day), 10_000):
            await hub.ingest(day[start : start + 10_000])
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        await hub.dora(since=START, until=END)
        first_report = time.perf_counter() - started
    return {
        "trend_seconds": trend_seconds,
        "new_events": len(day),
        "ingest_seconds": ingest_seconds,
        "first_report_seconds": first_report,
        "seconds": statistics.median(samples),
        "one_service_seconds": statistics.median(one),
        "one_service_max_seconds": max(one),
        "report": report,
        "exact": exact,
        "one_exact": one_exact,
        "peak_bytes": peak,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full data set (default 1)")
    parser.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="reuse --db if it exists, keep it afterwards")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side (median)")
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory(prefix="dora-bench-")
    path = args.db or Path(workdir.name) / "dora.db"
    url = f"sqlite:///{path.resolve()}"
    if not (args.keep and path.exists()):
        path.unlink(missing_ok=True)
        storage = SQLiteStorage(url)
        asyncio.run(storage.open())
        asyncio.run(storage.close())
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous=OFF")
        prepare(conn)
        started = time.perf_counter()
        conn.execute("BEGIN")
        counts = generate(conn, args.scale)
        conn.execute("COMMIT")
        generated = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("BEGIN")
        rebuild(conn)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        derived = time.perf_counter() - started
        conn.close()
        print(
            f"data: {counts['deployments']:,} deployments, {counts['changes']:,} changes, "
            f"{counts['incidents']:,} incidents, {SERVICES} services, {START.date()} to {END.date()}"
        )
        print(f"setup: generated in {generated:.1f} s, derived DORA tables in {derived:.1f} s (one-off, bulk)")

    base_seconds, base = timed(args.runs, lambda: baseline(path, START, END))
    result = asyncio.run(ours(url, args.runs, args.scale))
    report = result["report"].model_dump(mode="json")
    exact = result["exact"].model_dump(mode="json")

    worst_error, worst_name = 0.0, ""
    pairs = [(report, exact)] + [
        (approx.model_dump(mode="json"), truth.model_dump(mode="json")) for approx, truth in result["one_exact"]
    ]
    for approx, truth in pairs:
        for name, value in figures(truth).items():
            got = figures(approx).get(name)
            error = 0.0 if value == got else abs((got or 0.0) - value) / abs(value) if value else math.inf
            if error > worst_error:
                worst_error, worst_name = error, name
    levels_match = all(a["overall"] == t["overall"] for a, t in pairs)
    stages_compared = all(
        approx["lead_time"]["breakdown"] is not None and truth["lead_time"]["breakdown"] is not None
        for approx, truth in pairs
    )

    agree = {
        "deployments": (base["deployments"], report["deployment_frequency"]["count"]),
        "lead median": (round(base["lead_median"], 3), exact["lead_time"]["median_seconds"]),
        "lead p90": (round(base["lead_p90"], 3), exact["lead_time"]["p90_seconds"]),
        "lead count": (base["lead_count"], exact["lead_time"]["count"]),
        "failed deployments": (base["failed"], exact["change_failure_rate"]["failed"]),
    }
    ratio = base_seconds / result["seconds"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"baseline (Four-Keys-style SQL at report time): {base_seconds * 1000:,.0f} ms")
    print(f"ours, full year, all services:                 {result['seconds'] * 1000:,.1f} ms")
    print(f"ratio: {ratio:.1f}x  (goal >= 10x)")
    print(
        f"one service: {result['one_service_seconds'] * 1000:.1f} ms median, "
        f"{result['one_service_max_seconds'] * 1000:.1f} ms max over 10 services  (goal <= 50 ms)"
    )
    print(f"weekly trend, full year, all services (53 reports): {result['trend_seconds'] * 1000:,.0f} ms")
    print(f"accuracy: worst relative error {worst_error:.4%} ({worst_name or 'none'}), levels match: {levels_match}")
    breakdown_error, breakdown_name = 0.0, ""
    for approx, truth in pairs:
        for name, value in figures(truth["lead_time"]["breakdown"] or {}).items():
            got = figures(approx["lead_time"]["breakdown"] or {}).get(name)
            error = 0.0 if value == got else abs((got or 0.0) - value) / abs(value) if value else math.inf
            if error >= breakdown_error:
                breakdown_error, breakdown_name = error, name
    print(
        f"  of which the lead-time breakdown: worst {breakdown_error:.4%} ({breakdown_name or 'none'}), "
        f"present in every report: {stages_compared}"
    )
    print(f"report peak memory (tracemalloc): {result['peak_bytes'] / 2**20:.1f} MB; process max RSS {rss:.0f} MB")
    for name, (theirs, mine) in agree.items():
        print(f"  baseline vs exact {name}: {theirs} / {mine}{'' if theirs == mine else '  (differs)'}")
    print(
        f"incremental: {result['new_events']:,} new events through hub.ingest in {result['ingest_seconds']:.2f} s, "
        f"then the first report in {result['first_report_seconds'] * 1000:.0f} ms"
    )
    print(json.dumps(report["lead_time"]), json.dumps(report["change_failure_rate"]))
    print("notes:", json.dumps(report["notes"]))
    if args.keep:
        print(f"database kept at {path}")
    ok = ratio >= 10 and result["one_service_max_seconds"] <= 0.05 and worst_error <= 0.01 and stages_compared
    ok = ok and result["peak_bytes"] <= 500 * 2**20
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
