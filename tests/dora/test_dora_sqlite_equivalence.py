"""The SQLite fast path (derived tables kept at ingest) gives the reference facts.

Random event streams, ingested in batches, out of order, with updates that change
statuses, times and change lists, must give the same facts as the reference rules
over the same events; a rebuild from scratch must give the same derived tables.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from dora_builders import T0, D, H, M, chg, dep, inc

from metrichub_core.dora import DoraOptions, DoraScope, FactsRequest, Window
from metrichub_core.models import DeploymentStatus, Event
from metrichub_core.storage.memory import MemoryStorage
from metrichub_core.storage.sql.events import Rows
from metrichub_core.storage.sqlite import SQLiteStorage
from metrichub_core.storage.sqlite._dora_derive import DoraWrite, rebuild

_DERIVED = (
    "dora_ships", "dora_leads", "dora_lead_days", "dora_lead_months", "dora_deploy_days",
    "dora_incident_links", "dora_incident_days", "dora_stage_days", "dora_stage_months",
)  # fmt: skip


_STATUSES: tuple[DeploymentStatus, ...] = ("success",) * 6 + ("failure", "cancelled", "running")


def _stream(seed: int) -> list[Event]:
    rng, merges = random.Random(seed), random.Random(seed + 100)
    services, environments = ["api", "web", "db"], ["production", "staging"]
    events: list[Event] = []
    changes = [f"c{n}" for n in range(120)]
    for name in changes:
        committed = rng.uniform(-5, 60) * D
        merged = None if merges.random() < 0.3 else committed + merges.uniform(-0.5, 5) * D  # some odd
        events.append(chg(name, committed, service=rng.choice(services), source=rng.choice("ab"), merged=merged))
    for n in range(150):
        shipped = rng.sample(changes, rng.randint(0, 4))
        events.append(
            dep(
                f"d{n}", rng.uniform(0, 70) * D + rng.randint(0, 3) * M, shipped,
                status=rng.choice(_STATUSES),
                service=rng.choice(services), environment=rng.choice(environments),
                labels={"rework": "true"} if rng.random() < 0.1 else {}, source=rng.choice(["ci", "cd"]),
            )
        )  # fmt: skip
    for n in range(60):
        start = rng.uniform(-3, 72) * D
        resolved = start + rng.uniform(-0.1, 3) * D if rng.random() < 0.8 else None
        events.append(
            inc(
                f"i{n}", start, resolved, caused_by=f"d{rng.randrange(150)}" if rng.random() < 0.2 else None,
                related=rng.random() < 0.85, service=rng.choice(services), environment=rng.choice(environments),
            )
        )  # fmt: skip
    # Updates of some deployments: new status, time and change list, ingested later.
    for n in rng.sample(range(150), 30):
        events.append(
            dep(f"d{n}", rng.uniform(0, 70) * D, rng.sample(changes, 2), status=rng.choice(["success", "failure"]),
                service=rng.choice(services), source="ci")
        )  # fmt: skip
    return events


def _requests() -> list[FactsRequest]:
    windows = (
        Window(T0, T0 + 70 * D),  # whole months and days
        Window(T0 + 3 * H, T0 + 40 * D + 5 * H),  # partial edges
        Window(T0 + 10 * D, T0 + 10 * D + 7 * H),  # inside one day
        Window(T0 - 20 * D, T0 + 100 * D),
    )
    requests = []
    for service in (None, "api"):
        for environment in ("production", "staging"):
            scope = DoraScope(service=service, environment=environment)
            requests.append(FactsRequest(scope=scope, windows=windows))
            requests.append(
                FactsRequest(
                    scope=scope,
                    windows=windows,
                    options=DoraOptions(
                        attribution_window=2 * D, failed_deployments_count=True, recovery_clock="deployment"
                    ),
                )
            )
    return requests


async def _ingest(storage: SQLiteStorage | MemoryStorage, events: list[Event], seed: int) -> None:
    rng = random.Random(seed)
    position = 0
    while position < len(events):
        size = rng.randint(1, 40)
        await storage.upsert(events[position : position + size])
        position += size


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_sqlite_fast_path_equals_reference(tmp_path: Path, seed: int) -> None:
    events = _stream(seed)
    shuffled = events[:120]
    random.Random(seed).shuffle(shuffled)  # changes arrive in any order, some after their deployments
    ordered = events[120:] + shuffled[:60]
    ordered = shuffled[60:] + ordered
    memory, sqlite = MemoryStorage(), SQLiteStorage(f"sqlite:///{tmp_path}/eq.db")
    await memory.open()
    await sqlite.open()
    try:
        await _ingest(memory, ordered, seed)
        await _ingest(sqlite, ordered, seed)
        for request in _requests():
            assert await sqlite.dora_facts(request) == await memory.dora_facts(request), request
        incremental = await sqlite.read(_dump)

        def rebuilt(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
            conn.execute("BEGIN IMMEDIATE")
            rebuild(conn)
            dumped = _dump(conn)
            conn.execute("ROLLBACK")
            return dumped

        assert await sqlite.write(rebuilt) == incremental
    finally:
        await sqlite.close()
        await memory.close()


async def test_buckets_stay_within_one_percent_and_counts_exact(tmp_path: Path) -> None:
    rng = random.Random(11)
    events: list[Event] = []
    for n in range(3000):
        finished = T0 + timedelta(minutes=rng.uniform(0, 60 * 24 * 62))
        lead = timedelta(seconds=rng.lognormvariate(9, 1.3))
        events.append(chg(f"c{n}", finished - lead, merged=finished - lead * (n % 5) / 4))
        events.append(dep(f"d{n}", finished, [f"c{n}"]))
        if n % 3 == 0:
            started = finished + timedelta(minutes=rng.uniform(1, 600))
            resolved = started + timedelta(seconds=rng.lognormvariate(8, 1.2)) if n % 10 else None
            events.append(inc(f"i{n}", started, resolved, related=n % 7 != 0))
    sqlite, memory = SQLiteStorage(f"sqlite:///{tmp_path}/sketch.db"), MemoryStorage()
    await sqlite.open()
    await memory.open()
    try:
        await sqlite.upsert(events)
        await memory.upsert(events)
        for window in (Window(T0, T0 + 62 * D), Window(T0 + 5 * H, T0 + 33 * D + 2 * H)):
            request = FactsRequest(scope=DoraScope(), windows=(window,), exact_limit=0)
            (approx,) = await sqlite.dora_facts(request)
            (exact,) = await memory.dora_facts(request)
            assert not approx.lead_times.is_exact and not approx.restore.is_exact
            summarised = ("lead_times", "recovery", "restore", "commit_to_merge", "merge_to_deploy")
            # Every change has a merge (from its commit to its deployment's finish): the breakdown covers them all.
            assert not approx.commit_to_merge.is_exact
            assert approx.commit_to_merge.count == exact.commit_to_merge.count == exact.lead_times.count > 0
            assert replace(approx, **{field: getattr(exact, field) for field in summarised}) == exact
            for field in summarised:
                summary, truth = getattr(approx, field), getattr(exact, field)
                assert summary.count == truth.count
                assert summary.mean() == pytest.approx(truth.mean())
                for q in (0.5, 0.9):
                    estimate, value = summary.quantile(q), truth.quantile(q)
                    assert estimate is not None and value is not None
                    assert abs(estimate - value) <= 0.01 * value, (field, q)
    finally:
        await sqlite.close()
        await memory.close()


async def test_existing_database_is_filled_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    events = _stream(5)
    first = SQLiteStorage(url)
    await first.open()
    await first.upsert(events)
    await first.refresh_dora()
    expected = await first.read(_dump)

    def forget(conn: sqlite3.Connection) -> None:  # as if the events predated migration 2
        conn.execute("BEGIN IMMEDIATE")
        for table in _DERIVED:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE dora_meta SET value = '1' WHERE key = 'needs_rebuild'")
        conn.execute("COMMIT")

    await first.write(forget)
    await first.close()
    second = SQLiteStorage(url)
    await second.open()
    try:
        assert await second.read(_dump) == expected
    finally:
        await second.close()


def _dump(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    dumped = {}
    for table in _DERIVED:
        rows = [
            tuple(round(v, 6) if isinstance(v, float) else v for v in row)
            for row in conn.execute(f"SELECT * FROM {table}")
        ]
        dumped[table] = sorted(rows, key=repr)
    return dumped


async def test_a_queue_left_by_a_release_that_derived_lazily_is_applied_by_the_next_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Releases before derivation per batch only queued their keys in ``dora_pending``; a report
    applies what such a release left (during a rolling upgrade, or in an old database)."""
    events = _stream(4)
    half = len(events) // 2
    memory, sqlite = MemoryStorage(), SQLiteStorage(f"sqlite:///{tmp_path}/lazy.db")
    await memory.open()
    await sqlite.open()

    def queue_lazily(self: DoraWrite, rows: Rows) -> None:  # the previous release's queue, not derived
        self.conn.executemany(
            "INSERT INTO dora_pending SELECT 'deployment', ?1, ?2, d.service, d.environment, d.listed_at "
            "FROM (SELECT 1) LEFT JOIN deployments d ON d.source = ?1 AND d.id = ?2",
            rows.keys("deployments"),
        )
        self.conn.executemany(
            "INSERT INTO dora_pending SELECT 'change', ?1, ?2, c.service, NULL, NULL "
            "FROM (SELECT 1) LEFT JOIN changes c ON c.source = ?1 AND c.id = ?2",
            rows.keys("changes"),
        )
        self.conn.executemany(
            "INSERT INTO dora_pending VALUES ('incident', ?, ?, NULL, NULL, NULL)", rows.keys("incidents")
        )

    def pending(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM dora_pending").fetchone()[0])

    try:
        await memory.upsert(events)
        for start in range(0, half, 40):
            await sqlite.upsert(events[start : min(start + 40, half)])  # derived batch by batch
        with monkeypatch.context() as patch:
            patch.setattr(DoraWrite, "queue", queue_lazily)
            patch.setattr(DoraWrite, "derive", lambda self: None)
            for start in range(half, len(events), 40):
                await sqlite.upsert(events[start : start + 40])
        assert await sqlite.read(pending) > 0
        for request in _requests():
            assert await sqlite.dora_facts(request) == await memory.dora_facts(request), request
        assert await sqlite.read(pending) == 0
    finally:
        await sqlite.close()
        await memory.close()
