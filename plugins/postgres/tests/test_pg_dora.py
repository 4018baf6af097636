"""DORA on PostgreSQL: the core's golden cases, and facts identical to the reference rules."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from metrichub_plugin_postgres import PostgresStorage
from metrichub_plugin_postgres.testing import TemporaryServer
from pg_released import write_as_released

from metrichub_core.dora import DoraOptions, DoraScope, FactsRequest, Window
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.storage.memory import MemoryStorage

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def test_dora_golden_cases_pass_on_postgresql(pg_server: TemporaryServer, pg_database: str) -> None:
    """Runs the core's ``tests/dora`` with its ``extra`` backend pointed at this server."""
    golden = ROOT / "tests" / "dora"
    if not golden.is_dir():
        pytest.skip("the core's tests/dora are not beside this plugin (installed on its own)")
    env = {**os.environ, "METRICHUB_DORA_STORAGE_URL": pg_server.url(pg_database, schema="{name}")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(golden), "-q", "-k", "extra", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary


def random_events(seed: int, deployments: int = 400) -> list[Event]:
    """A messy history: several services, environments and sources, labels, rework,
    named and unnamed causes, open and negative incidents, missing and late changes."""
    rng = random.Random(seed)
    services = ["api", "web", "batch"]
    events: list[Event] = []
    for n in range(deployments):
        service = rng.choice(services)
        environment = rng.choice(["production"] * 4 + ["staging"])
        started = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        finished = None if rng.random() < 0.05 else started + timedelta(seconds=rng.randrange(0, 3_600))
        change_ids = [f"c{rng.randrange(0, deployments)}" for _ in range(rng.randrange(0, 4))]
        labels = {"team": rng.choice(["core", "edge"])}
        if rng.random() < 0.05:
            labels["rework"] = rng.choice(["true", "Yes", "no"])
        events.append(
            Deployment(
                id=f"d{n}", source=rng.choice(["ci", "gh"]), service=service, environment=environment,
                status=rng.choice(["success"] * 6 + ["failure", "cancelled", "running"]), started_at=started,
                finished_at=finished, change_ids=change_ids, labels=labels,
            )
        )  # fmt: skip
    merges = random.Random(seed + 1)  # merged_at: none, or up to a day before the commit to 10 days after it
    for n in range(deployments):
        if rng.random() < 0.1:
            continue  # a change id that deployments list but nobody stored
        committed = T0 + timedelta(minutes=rng.randrange(-60 * 24 * 7, 60 * 24 * 60))
        merged = None if merges.random() < 0.3 else committed + timedelta(minutes=merges.randrange(-1440, 14400))
        events.append(
            Change(
                id=f"c{n}", source=rng.choice(["gh", "gl"]), service=rng.choice(services), committed_at=committed,
                merged_at=merged,
            )
        )  # fmt: skip
    for n in range(deployments // 5):
        started = T0 + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        resolved = None if rng.random() < 0.15 else started + timedelta(seconds=rng.randrange(-600, 20_000))
        events.append(
            Incident(
                id=f"i{n}", source="pd", service=rng.choice(services),
                environment=rng.choice(["production"] * 5 + ["staging"]), started_at=started, resolved_at=resolved,
                caused_by=rng.choice([None, None, f"d{rng.randrange(0, deployments)}", "nope"]),
                deployment_related=rng.random() < 0.9,
            )
        )  # fmt: skip
    return events


REQUESTS = [
    FactsRequest(scope=DoraScope(), windows=(Window(T0, T0 + timedelta(days=60)),)),
    FactsRequest(
        scope=DoraScope(service="api"),
        windows=tuple(Window(T0 + timedelta(days=7 * w), T0 + timedelta(days=7 * (w + 1))) for w in range(9)),
    ),
    FactsRequest(
        scope=DoraScope(service="web", labels={"team": "core"}), windows=(Window(T0, T0 + timedelta(days=30)),)
    ),
    FactsRequest(
        scope=DoraScope(environment="staging"), windows=(Window(T0 - timedelta(days=1), T0 + timedelta(days=90)),)
    ),
    FactsRequest(
        scope=DoraScope(service="batch"),
        windows=(Window(T0, T0 + timedelta(days=60)),),
        options=DoraOptions(
            attribution_window=timedelta(hours=6), failed_deployments_count=True, recovery_clock="deployment"
        ),
    ),
    FactsRequest(scope=DoraScope(service="nobody"), windows=(Window(T0, T0 + timedelta(days=60)),)),
    # Windows inside one day (edges only, no rollup), and whole months and days between partial ones.
    FactsRequest(
        scope=DoraScope(),
        windows=tuple(Window(T0 + timedelta(hours=h), T0 + timedelta(hours=h + 5)) for h in range(0, 24 * 60, 29)),
    ),
    FactsRequest(
        scope=DoraScope(service="api"),
        windows=(Window(T0 - timedelta(hours=7), T0 + timedelta(days=45, hours=3)),),
    ),
]


@pytest.mark.parametrize("seed", [1, 2])
async def test_facts_equal_the_reference_rules(pg_url: str, seed: int) -> None:
    events = random_events(seed)
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        await reference.upsert(events)
        await postgres.upsert(events)
        for request in REQUESTS:
            assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
    finally:
        await postgres.close()


def revised(events: list[Event], seed: int) -> list[Event]:
    """New versions of a third of ``events``: moved in time, to another service or environment,
    another status, other changes, resolved or reopened, attributed elsewhere."""
    rng = random.Random(seed)
    changed: list[Event] = []
    for event in rng.sample(events, len(events) // 3):
        if isinstance(event, Deployment):
            shift = timedelta(minutes=rng.randrange(-3_000, 3_000))
            changed.append(
                event.model_copy(
                    update={
                        "started_at": event.started_at + shift,
                        "finished_at": None if event.finished_at is None else event.finished_at + shift,
                        "status": rng.choice(["success", "success", "failure"]),
                        "service": rng.choice([event.service, "api", "web"]),
                        "environment": rng.choice([event.environment, "production", "staging"]),
                        "change_ids": [*event.change_ids[1:], f"c{rng.randrange(0, 400)}"],
                        "labels": {**event.labels, "rework": rng.choice(["true", "no"])},
                    }
                )
            )
        elif isinstance(event, Change):
            changed.append(
                event.model_copy(update={"committed_at": event.committed_at + timedelta(hours=rng.randrange(-48, 48))})
            )
        else:
            changed.append(
                event.model_copy(
                    update={
                        "resolved_at": rng.choice([None, event.started_at + timedelta(minutes=rng.randrange(1, 900))]),
                        "caused_by": rng.choice([None, f"d{rng.randrange(0, 400)}"]),
                        "service": rng.choice([event.service, "batch"]),
                    }
                )
            )
    return changed


async def derived_tables(url: str) -> dict[str, list[tuple[object, ...]]]:
    import psycopg

    tables = ["dora_ships", "dora_leads", "dora_lead_days", "dora_lead_months", "dora_deploy_days"]
    tables += ["dora_incident_links", "dora_incident_days", "dora_stage_days", "dora_stage_months"]
    found = {}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for table in tables:
            rows = await (await conn.execute(f"SELECT * FROM {table}")).fetchall()
            # Sums of floats may differ in the last bit with the order they were added in.
            found[table] = sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows)
    return found


async def assert_derived_as_rebuilt(postgres: PostgresStorage, url: str) -> None:
    """The derived tables kept batch by batch equal those a rebuild from the events makes."""
    from metrichub_plugin_postgres._dora_schema import REBUILD

    incremental = await derived_tables(url)

    async def rebuild(conn):  # type: ignore[no-untyped-def]
        async with conn.transaction():
            for statement in REBUILD:
                await conn.execute(statement)

    await postgres.run(rebuild)
    assert await derived_tables(url) == incremental


async def test_incremental_upkeep_equals_a_rebuild_and_the_reference(pg_url: str) -> None:
    """Many small shuffled batches, then revisions of a third of the events: the derived
    tables equal a rebuild from scratch, and the facts equal the reference rules."""
    events = random_events(3, deployments=300)
    updates = revised(events, 4)
    rng = random.Random(5)
    rng.shuffle(events)
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        for stream in (events, updates):
            for start in range(0, len(stream), 37):
                await reference.upsert(stream[start : start + 37])
                await postgres.upsert(stream[start : start + 37])
        for request in REQUESTS:
            assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
        await assert_derived_as_rebuilt(postgres, pg_url)
    finally:
        await postgres.close()


async def test_versions_older_than_the_stored_ones_change_nothing_derived(pg_url: str) -> None:
    """A batch mixing revisions older than what is stored (refused by the ``updated_at`` rule, so
    neither written nor derived: their ships, leads and links stay) and newer ones (written and
    derived): the facts equal the reference rules', the derived tables a rebuild's."""
    stored_at, older, newer = T0 + timedelta(days=200), T0 + timedelta(days=100), T0 + timedelta(days=300)
    events = [event.model_copy(update={"updated_at": stored_at}) for event in random_events(21, deployments=200)]
    stale = [event.model_copy(update={"updated_at": older}) for event in revised(events, 22)]
    fresh = [event.model_copy(update={"updated_at": newer}) for event in revised(events, 23)]
    mixed = stale + fresh
    random.Random(24).shuffle(mixed)
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        for stream in (events, mixed):
            for start in range(0, len(stream), 50):
                await reference.upsert(stream[start : start + 50])
                await postgres.upsert(stream[start : start + 50])
        for request in REQUESTS:
            assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
        stale_only = {(event.source, event.id) for event in stale} - {(event.source, event.id) for event in fresh}
        some = next(event for event in stale if (event.source, event.id) in stale_only)
        kind = {Deployment: "deployment", Change: "change", Incident: "incident"}[type(some)]
        assert await postgres.get(kind, some.source, some.id) == await reference.get(kind, some.source, some.id)
        assert (await postgres.get(kind, some.source, some.id)).updated_at == stored_at  # type: ignore[union-attr]
        await assert_derived_as_rebuilt(postgres, pg_url)
    finally:
        await postgres.close()


async def test_big_windows_come_back_as_1_percent_buckets_of_the_exact_values(pg_url: str) -> None:
    from metrichub_core.dora import bucket_of

    events = random_events(6)
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        await reference.upsert(events)
        await postgres.upsert(events)
        # Partial days at both edges, whole days and whole months in between.
        window = (Window(T0 - timedelta(days=3, hours=2), T0 + timedelta(days=70, hours=5)),)
        (ours,) = await postgres.dora_facts(FactsRequest(scope=DoraScope(), windows=window, exact_limit=0))
        (exact,) = await reference.dora_facts(FactsRequest(scope=DoraScope(), windows=window))
        assert ours.lead_times.count == exact.lead_times.count > 0 and not ours.lead_times.is_exact
        expected: dict[int, list[float]] = {}
        for value in exact.lead_times.values or ():
            expected.setdefault(bucket_of(value), []).append(value)
        assert [(b.count, b.low, b.high) for b in ours.lead_times.buckets or ()] == [
            (len(values), min(values), max(values)) for _, values in sorted(expected.items())
        ]
        assert ours.lead_times.total == pytest.approx(exact.lead_times.total, rel=1e-12)
        assert ours.lead_times.quantile(0.5) == pytest.approx(exact.lead_times.quantile(0.5), rel=0.01)
        assert (ours.negative_lead_times, ours.missing_changes) == (exact.negative_lead_times, exact.missing_changes)
        # incident durations and the lead-time breakdown's stages come back as buckets too
        for name in ("restore", "recovery", "commit_to_merge", "merge_to_deploy"):
            summary, truth = getattr(ours, name), getattr(exact, name)
            assert summary.count == truth.count > 0 and not summary.is_exact
            grouped: dict[int, list[float]] = {}
            for value in truth.values or ():
                grouped.setdefault(bucket_of(value), []).append(value)
            assert [(b.count, b.low, b.high) for b in summary.buckets or ()] == [
                (len(values), min(values), max(values)) for _, values in sorted(grouped.items())
            ]
        summarised = ("lead_times", "restore", "recovery", "commit_to_merge", "merge_to_deploy")
        assert ours == replace(exact, **{name: getattr(ours, name) for name in summarised}), "every count is exact"
    finally:
        await postgres.close()


async def test_sql_buckets_are_pythons(pg_url: str) -> None:
    import psycopg

    from metrichub_core.dora import bucket_of
    from metrichub_core.storage.sql.dialect import POSTGRES

    rng = random.Random(7)
    values = [0.0, 0.0005, 0.000999, 0.001, 0.00101, 0.5, 0.9, 0.999999, 1.0, 1.01, 1.0201, 100.0]
    values += [rng.uniform(0, 10**8) for _ in range(3_000)] + [rng.uniform(0, 2) for _ in range(1_000)]
    values += [1.01**k for k in range(0, 2_000, 7)]
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        rows = await (
            await conn.execute(
                f"SELECT {POSTGRES.bucket('v')} FROM unnest(%s::float8[]) WITH ORDINALITY AS t(v, n) ORDER BY n",
                (values,),
            )
        ).fetchall()
    assert [bucket for (bucket,) in rows] == [bucket_of(value) for value in values]


async def _queued(url: str) -> tuple[int, int]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (
            await conn.execute("SELECT (SELECT count(*) FROM dora_pending), (SELECT count(*) FROM dora_leads)")
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_each_batch_is_derived_in_its_own_transaction(pg_url: str) -> None:
    """Every upsert derives its batch before it commits: nothing is queued after it, and the
    derived tables answer exactly without a refresh."""
    events = random_events(7, deployments=200)
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        await reference.upsert(events)
        for start in range(0, len(events), 50):
            await postgres.upsert(events[start : start + 50])
            pending, leads = await _queued(pg_url)
            assert pending == 0 and leads > 0
        for request in REQUESTS:
            assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
        assert await postgres.refresh_dora() == 0
    finally:
        await postgres.close()


async def test_a_change_not_shipped_yet_recounts_nothing(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that moves no lead, deployment or incident (a webhook's change before its deployment)
    sends no rollup statement and opens no pipeline: each would cost a round trip."""
    import psycopg

    sent: list[str] = []
    execute, pipeline = psycopg.AsyncConnection.execute, psycopg.AsyncConnection.pipeline

    async def recording(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(query))
        return await execute(self, query, *args, **kwargs)

    def no_pipeline(self):  # type: ignore[no-untyped-def]
        sent.append("pipeline")
        return pipeline(self)

    postgres = PostgresStorage(pg_url)
    await postgres.open()
    try:
        monkeypatch.setattr(psycopg.AsyncConnection, "execute", recording)
        monkeypatch.setattr(psycopg.AsyncConnection, "pipeline", no_pipeline)
        await postgres.upsert([Change(id="c1", source="gh", service="api", committed_at=T0)])
        assert sent and not [query for query in sent if "_days" in query or "_months" in query or query == "pipeline"]
        shipped = Deployment(
            id="d1", source="ci", service="api", status="success", started_at=T0 + timedelta(hours=1), change_ids=["c1"]
        )
        await postgres.upsert([shipped])
        assert "pipeline" in sent and any("dora_lead_days" in query for query in sent)
    finally:
        await postgres.close()


@contextlib.contextmanager
def queue_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Upserts inside the block only queue their batch (``QUEUE_SQL``), as the releases that derived lazily did."""
    from metrichub_plugin_postgres import _storage
    from metrichub_plugin_postgres._batch import Written
    from metrichub_plugin_postgres._dora_write import QUEUE_SQL, _columns

    from metrichub_core.storage.sql.events import Rows

    upsert = _storage.upsert_batch

    async def queue(conn: Any, batch: Rows) -> Written:
        keys = _columns(batch.deployments, 2)
        await conn.execute(QUEUE_SQL, [*keys, *keys, *_columns(batch.changes, 2), *_columns(batch.incidents, 2)])
        return await upsert(conn, batch)

    async def nothing(conn: Any, written: Written) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(_storage, "upsert_batch", queue)
        patch.setattr(_storage, "derive", nothing)
        yield


async def test_a_long_queue_is_applied_by_a_rebuild(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from metrichub_plugin_postgres import _dora_schema, _dora_write

    rebuilt: list[str] = []
    monkeypatch.setattr(_dora_write, "REBUILD_AT", 10)
    monkeypatch.setattr(_dora_write, "REBUILD", [*_dora_schema.REBUILD, "SELECT 'rebuilt'"])
    events = random_events(8, deployments=200)
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        await reference.upsert(events)
        with queue_only(monkeypatch):
            await postgres.upsert(events)

        async def spy(conn):  # type: ignore[no-untyped-def]
            execute = conn.execute

            async def recording(query, *args, **kwargs):  # type: ignore[no-untyped-def]
                rebuilt.append(str(query))
                return await execute(query, *args, **kwargs)

            conn.execute = recording
            try:
                async with conn.transaction():
                    return await _dora_write.refresh(conn)
            finally:
                del conn.execute

        assert await postgres.run(spy) > 10
        assert "SELECT 'rebuilt'" in rebuilt
        for request in REQUESTS:
            assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
        assert (await _queued(pg_url))[0] == 0
    finally:
        await postgres.close()


async def test_a_queue_written_by_the_previous_release_is_applied(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queue rows from before changes carried their stored service (``[source, id]`` only) still derive."""
    import psycopg

    events = random_events(11, deployments=80)
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        await reference.upsert(events)
        with queue_only(monkeypatch):
            await postgres.upsert(events)
        assert await postgres.refresh_dora() > 0
        lead_of = (
            "SELECT l.committed_at FROM dora_leads l JOIN changes c ON c.service = l.service AND c.id = l.change_id "
            "WHERE c.source = %s AND c.id = %s"
        )
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            shipped = await (
                await conn.execute(
                    "SELECT c.source, c.id, l.committed_at FROM dora_leads l "
                    "JOIN changes c ON c.service = l.service AND c.id = l.change_id WHERE l.bucket >= 0 LIMIT 1"
                )
            ).fetchone()
            assert shipped is not None
            source, id_, committed = shipped
            # The change re-committed an hour earlier, written as the previous release wrote it.
            async with conn.transaction():
                await conn.execute(
                    "UPDATE changes SET committed_at = committed_at - 3600000000 WHERE source = %s AND id = %s",
                    (source, id_),
                )
                await conn.execute(
                    "INSERT INTO dora_pending (old, deployments, changes, incidents) VALUES ('[]', '[]', %s, '[]')",
                    (json.dumps([[source, id_]]),),
                )
            change = next(e for e in events if isinstance(e, Change) and (e.source, e.id) == (source, id_))
            await reference.upsert(
                [change.model_copy(update={"committed_at": change.committed_at - timedelta(hours=1)})]
            )
            for request in REQUESTS:
                assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
            leads = await (await conn.execute(lead_of, (source, id_))).fetchall()
            assert leads and all(lead == (committed - 3_600_000_000,) for lead in leads)
        assert (await _queued(pg_url))[0] == 0
    finally:
        await postgres.close()


@pytest.mark.parametrize("version", [3, 4, 6, 10, 11])
async def test_a_database_written_at_an_older_version_is_migrated_and_reports_as_fresh(
    pg_url: str, version: int
) -> None:
    """Migrations 4 (the shared day rollups), 5 (the links' named columns), 9 (the lead-time
    breakdown) and 11 (its stages in the lead rows) on a database as the releases before them left
    it; at version 4 a link row of the old rules is left behind (a production incident attributed
    to a staging deployment), which the rebuild replaces; at versions 6 and 10 the previous release
    had applied its queue (and at 10 kept a stage table, which goes); at version 11 it had derived
    everything, and migration 12 changes the text keys' collation under derived data."""
    import psycopg
    from metrichub_plugin_postgres._dora_schema import REBUILD
    from metrichub_plugin_postgres._schema import MIGRATIONS, migrate

    from metrichub_core.storage.sql.dialect import POSTGRES
    from metrichub_core.storage.sql.events import Rows

    events = random_events(12, deployments=150)
    early, late = events[: len(events) // 2], events[len(events) // 2 :]
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        assert await migrate(conn, migrations=MIGRATIONS[:version]) == version
        await write_as_released(conn, early)
        keys = {table: json.dumps([list(row[:2]) for row in rows]) for table, rows in Rows(early, POSTGRES).tables()}
        await conn.execute(  # the queue row the previous release wrote with them
            "INSERT INTO dora_pending (old, deployments, changes, incidents) VALUES ('[]', %s, %s, %s)",
            (keys.get("deployments", "[]"), keys.get("changes", "[]"), keys.get("incidents", "[]")),
        )
        if version == 4:
            await conn.execute(
                "INSERT INTO dora_incident_links VALUES ('stale', 'i', 'api', 'production', 0, NULL, true, 'ci', "
                "'v42', 'staging', 'success', 0, false, NULL, NULL, NULL, false)"
            )
        if version >= 6:  # the queue applied by that release (its derived tables current as far as it knew)
            await conn.execute("DELETE FROM dora_pending")
        if version == 10:
            await conn.execute("INSERT INTO dora_lead_stages VALUES ('api', 'prod', 'c1', 0, 1, 2, 0)")
        if version == 11:  # derived by the release before migration 12
            await conn.execute(";\n".join(REBUILD))
    reference, postgres = MemoryStorage(), PostgresStorage(pg_url)
    await reference.open()
    await postgres.open()
    try:
        assert postgres.schema_version == len(MIGRATIONS)
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            assert await (await conn.execute("SELECT to_regclass('dora_lead_stages')")).fetchone() == (None,)
        await reference.upsert(early)
        for request in REQUESTS:
            assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
        # Then kept incrementally, as on a fresh database.
        for start in range(0, len(late), 40):
            await postgres.upsert(late[start : start + 40])
        await reference.upsert(late)
        for request in REQUESTS:
            assert await postgres.dora_facts(request) == await reference.dora_facts(request), request
    finally:
        await postgres.close()
