"""SQLite schema versions: older databases are migrated and report as fresh ones; newer ones are refused."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metrichub_core.dora import DoraOptions, DoraScope, FactsRequest, Window
from metrichub_core.dora.reference import is_rework_labelled
from metrichub_core.errors import MigrationError, StorageError
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.storage.memory import MemoryStorage
from metrichub_core.storage.sql.paging import to_micros
from metrichub_core.storage.sqlite import SQLiteStorage
from metrichub_core.storage.sqlite._schema import MIGRATIONS, migrate


async def test_a_newer_database_is_refused_naming_the_version(tmp_path: Path) -> None:
    path = tmp_path / "metrichub.db"
    storage = SQLiteStorage(f"sqlite:///{path}")
    await storage.open()
    known = storage.schema_version
    assert known is not None
    await storage.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, datetime('now'))", (known + 1,))
    newer = SQLiteStorage(f"sqlite:///{path}")
    # Once reported as "SQLite storage ... is closed": the bare RuntimeError looked like a shut-down executor.
    with pytest.raises(MigrationError) as raised:
        await newer.open()
    message = str(raised.value)
    assert "written by a newer MetricHub" in message
    assert f"version {known + 1}" in message and f"up to {known}" in message
    assert str(path) in message and "closed" not in message
    assert isinstance(raised.value, StorageError)
    await newer.close()


RELEASED = 2
"""The schema version of the databases MetricHub wrote before the storage kit (migrations 1-2)."""
T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)


def _stream(seed: int) -> list[Event]:
    """Deployments (some labelled rework, some replaced later), changes and incidents over 70 days."""
    rng, merges = random.Random(seed), random.Random(seed + 1)
    day = timedelta(days=1)
    events: list[Event] = []
    changes = [f"c{n}" for n in range(80)]
    for name in changes:
        committed = T0 + rng.uniform(-5, 60) * day
        merged = None if merges.random() < 0.3 else committed + merges.uniform(-0.5, 4) * day  # some odd, some late
        events.append(Change(id=name, source="git", service=rng.choice("ab"), committed_at=committed, merged_at=merged))
    for n in range(120):
        finished = T0 + rng.uniform(0, 70) * day
        events.append(
            Deployment(
                id=f"d{n}", source="ci", service=rng.choice("ab"), environment=rng.choice(["prod", "stage"]),
                status=rng.choice(["success"] * 5 + ["failure", "cancelled"]),
                started_at=finished - timedelta(minutes=5), finished_at=finished,
                change_ids=rng.sample(changes, rng.randint(0, 3)),
                labels=rng.choice([{}, {"rework": "true"}, {"rework": " Yes"}, {"rework": "no"}, {"team": "x"}]),
            )
        )  # fmt: skip
    for n in range(50):
        started = T0 + rng.uniform(-3, 72) * day
        events.append(
            Incident(
                id=f"i{n}", source="pd", service=rng.choice("ab"), environment=rng.choice(["prod", "stage"]),
                started_at=started, resolved_at=started + rng.uniform(-0.1, 3) * day if rng.random() < 0.8 else None,
                caused_by=f"d{rng.randrange(120)}" if rng.random() < 0.2 else None,
                deployment_related=rng.random() < 0.85,
            )
        )  # fmt: skip
    return events


def _write_as_released(path: Path, events: list[Event], version: int = RELEASED) -> sqlite3.Connection:
    """A database as MetricHub wrote it at schema ``version``: the released migrations, rows by plain SQL.

    Returns the connection, still open."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, migrations=MIGRATIONS[:version]) == version
    micros = to_micros
    updated = ", NULL" if version >= 7 else ""  # migration 7's updated_at, unknown
    with conn:
        for event in events:
            if isinstance(event, Deployment):
                finished = event.finished_at or event.started_at
                rework = (int(is_rework_labelled(event)),) if version >= 3 else ()  # migration 3's column
                conn.execute(
                    f"INSERT OR REPLACE INTO deployments VALUES ({', '.join('?' * (12 + len(rework)))}{updated})",
                    (event.source, event.id, event.service, event.environment, event.status, micros(event.started_at),
                     micros(finished), micros(finished), None, json.dumps(event.change_ids), None,
                     json.dumps(event.labels), *rework),
                )  # fmt: skip
            elif isinstance(event, Change):
                conn.execute(
                    f"INSERT OR REPLACE INTO changes VALUES (?, ?, ?, ?, ?, NULL{updated})",
                    (event.source, event.id, event.service, micros(event.committed_at),
                     None if event.merged_at is None else micros(event.merged_at)),
                )  # fmt: skip
            else:
                assert isinstance(event, Incident)
                conn.execute(
                    f"INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL{updated})",
                    (event.source, event.id, event.service, event.environment, micros(event.started_at),
                     None if event.resolved_at is None else micros(event.resolved_at), event.caused_by,
                     int(event.deployment_related)),
                )  # fmt: skip
    return conn


def _requests(options: DoraOptions | None = None) -> list[FactsRequest]:
    windows = (
        Window(T0, T0 + timedelta(days=70)),
        Window(T0 + timedelta(hours=3), T0 + timedelta(days=40, hours=5)),
        Window(T0 - timedelta(days=20), T0 + timedelta(days=100)),
    )
    return [
        FactsRequest(
            scope=DoraScope(service=service, environment=environment, labels=labels),
            windows=windows,
            options=options or DoraOptions(),
        )
        for service in (None, "a")
        for environment in ("prod", "stage")
        for labels in ({}, {"team": "x"})
    ]


async def test_a_database_written_at_version_2_is_migrated_and_reports_as_fresh(tmp_path: Path) -> None:
    events = _stream(7)
    old = tmp_path / "old.db"
    _write_as_released(old, events).close()
    migrated = SQLiteStorage(f"sqlite:///{old}")
    fresh = SQLiteStorage(f"sqlite:///{tmp_path / 'fresh.db'}")
    reference = MemoryStorage()
    await migrated.open()
    await fresh.open()
    await reference.open()
    try:
        assert migrated.schema_version == len(MIGRATIONS) > RELEASED
        await fresh.upsert(events)
        await reference.upsert(events)
        # The new column holds the reference rule's answer for every stored deployment.
        labelled = await migrated.read(lambda conn: dict(conn.execute("SELECT id, rework FROM deployments")))
        latest = {event.id: event for event in events if isinstance(event, Deployment)}
        assert labelled == {id_: int(is_rework_labelled(d)) for id_, d in latest.items()}
        assert any(labelled.values())
        for request in _requests():
            expected = await reference.dora_facts(request)
            assert await migrated.dora_facts(request) == expected, request
            assert await fresh.dora_facts(request) == expected, request
        # Events written after the migration are derived as on a fresh database.
        later = [
            event.model_copy(update={"labels": {"rework": "1"}})
            for event in events[80:90]
            if isinstance(event, Deployment)
        ]
        for storage in (migrated, fresh, reference):
            await storage.upsert(later)
        for request in _requests():
            assert await migrated.dora_facts(request) == await reference.dora_facts(request), request
    finally:
        await migrated.close()
        await fresh.close()
        await reference.close()


async def test_a_database_written_at_version_4_is_rebuilt_with_the_named_links(tmp_path: Path) -> None:
    """Migration 5 (what caused_by may name depends on the options) on a database whose derived
    tables the previous release had filled: they are rebuilt on open, under every option."""
    events = _stream(11)
    old = tmp_path / "old.db"
    conn = _write_as_released(old, events, version=4)
    with conn:  # derived by the previous release: a link of its rules (a prod incident blamed on a stage run)
        conn.execute("UPDATE dora_meta SET value = '0' WHERE key = 'needs_rebuild'")
        conn.execute(
            "INSERT INTO dora_incident_links VALUES ('stale', 'i', 'a', 'prod', 0, NULL, 1, 'ci', 'd1', 'stage', "
            "'success', 0, 0, NULL, NULL, NULL, 0)"
        )
    conn.close()
    migrated, reference = SQLiteStorage(f"sqlite:///{old}"), MemoryStorage()
    await migrated.open()
    await reference.open()
    try:
        assert migrated.schema_version == len(MIGRATIONS)
        await reference.upsert(events)
        assert await migrated.read(lambda c: c.execute("SELECT count(*) FROM dora_incident_links").fetchone()[0]) == 50
        for options in (DoraOptions(), DoraOptions(failed_deployments_count=True, recovery_clock="deployment")):
            for request in _requests(options):
                assert await migrated.dora_facts(request) == await reference.dora_facts(request), request
    finally:
        await migrated.close()
        await reference.close()


@pytest.mark.parametrize("version", [6, 10])
async def test_a_database_written_before_the_breakdown_lived_in_the_lead_rows_reports_as_fresh(
    tmp_path: Path, version: int
) -> None:
    """The breakdown's migrations (9: its tables; 11: its stages in the lead rows, ``dora_lead_stages``
    dropped) on a database whose derived tables the release at ``version`` held current: they are
    rebuilt on open, and the breakdown is the reference's."""
    events = _stream(12)
    old = tmp_path / "old.db"
    conn = _write_as_released(old, events, version=version)
    with conn:  # that release's derived tables, current as far as it knew
        if version >= 9:  # a stage row as such a release kept them
            conn.execute("INSERT INTO dora_lead_stages VALUES ('api', 'prod', 'c1', 0, 1, 2, 0)")
        conn.execute("UPDATE dora_meta SET value = '0' WHERE key = 'needs_rebuild'")
    conn.close()
    migrated, reference = SQLiteStorage(f"sqlite:///{old}"), MemoryStorage()
    await migrated.open()
    await reference.open()
    try:
        assert migrated.schema_version == len(MIGRATIONS) >= 11
        tables = await migrated.read(lambda c: [row[0] for row in c.execute("SELECT name FROM sqlite_master")])
        assert "dora_lead_stages" not in tables
        staged = await migrated.read(
            lambda c: c.execute("SELECT count(*) FROM dora_leads WHERE merge_us IS NOT NULL").fetchone()[0]
        )
        assert staged > 0
        await reference.upsert(events)
        for request in _requests():
            assert await migrated.dora_facts(request) == await reference.dora_facts(request), request
        (facts,) = await reference.dora_facts(FactsRequest(DoraScope(environment="prod"), (Window(T0, T0 + 70 * DAY),)))
        assert facts.commit_to_merge.count > 0  # the comparisons above cover a breakdown
    finally:
        await migrated.close()
        await reference.close()


def test_processes_opening_a_new_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    """`serve --workers 2` on a new file: each worker migrates it; once the second saw version 0
    before the first committed, and then failed on "table dora_leads already exists"."""
    for attempt in range(4):
        path = tmp_path / f"new-{attempt}.db"
        assert _open_at_once(path, openers=6) == []
        with sqlite3.connect(path) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))


def _open_at_once(path: Path, *, openers: int) -> list[BaseException]:
    """Open ``path`` from ``openers`` threads released together; return what they raised."""
    barrier = threading.Barrier(openers)
    failures: list[BaseException] = []

    def open_when_all_ready() -> None:
        storage = SQLiteStorage(f"sqlite:///{path}")
        barrier.wait()
        try:
            asyncio.run(storage.open())
        except BaseException as exc:
            failures.append(exc)
        finally:
            asyncio.run(storage.close())

    threads = [threading.Thread(target=open_when_all_ready) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures
