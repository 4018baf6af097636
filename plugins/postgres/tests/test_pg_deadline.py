"""A report's work on PostgreSQL stops at its request's deadline (issue 19 item 1).

The report is made to wait for the tables it reads, locked by another connection until the
test lets go: only the deadline (the transaction's ``statement_timeout``) can end the wait.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from metrichub_plugin_postgres import PostgresStorage

from metrichub_core import Deployment, MetricHub
from metrichub_core.deadline import DeadlineExceeded, deadline

NOW = datetime.now(UTC)
TEAM = {"team": "a"}


def _deployment() -> Deployment:
    moment = NOW - timedelta(days=1)
    return Deployment(
        id="d1", source="ci", service="api", status="success", started_at=moment, finished_at=moment, labels=TEAM
    )


@pytest.mark.parametrize("labels", [TEAM, {}], ids=["labelled", "rollups"])
async def test_a_report_waiting_past_its_deadline_is_cancelled(pg_url: str, labels: dict[str, str]) -> None:
    async with MetricHub(PostgresStorage(pg_url)) as hub:
        await hub.ingest([_deployment()])  # derived in its own transaction
        async with await psycopg.AsyncConnection.connect(pg_url) as blocker, blocker.transaction():
            # The labelled path reads the deployments, the rollups' path the day rollups.
            await blocker.execute("LOCK TABLE deployments, dora_deploy_days IN ACCESS EXCLUSIVE MODE")
            with deadline(0.5), pytest.raises(DeadlineExceeded):
                await asyncio.wait_for(hub.dora(days=7, labels=labels), 30)
            # The server gave up the statement: nothing of the report waits for a lock any more.
            waiting = await blocker.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            assert (await waiting.fetchone()) == (0,)
        report = await hub.dora(days=7, labels=labels)  # the tables are free: answered
        assert report.deployment_frequency.count == 1


async def test_a_report_whose_deadline_has_passed_asks_nothing(pg_url: str) -> None:
    async with MetricHub(PostgresStorage(pg_url)) as hub:
        with deadline(0), pytest.raises(DeadlineExceeded):
            await hub.dora(days=7, labels=TEAM)
