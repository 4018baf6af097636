"""DORA on PostgreSQL: the core's golden cases, and facts identical to the reference rules."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from metrichub_plugin_postgres import PostgresStorage
from metrichub_plugin_postgres.testing import TemporaryServer

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
    for n in range(deployments):
        if rng.random() < 0.1:
            continue  # a change id that deployments list but nobody stored
        events.append(
            Change(
                id=f"c{n}", source=rng.choice(["gh", "gl"]), service=rng.choice(services),
                committed_at=T0 + timedelta(minutes=rng.randrange(-60 * 24 * 7, 60 * 24 * 60)),
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
