"""The DORA query side of ``postgresql://``: the scope's events, loaded lean, under the reference rules.

PostgreSQL narrows the rows to the scope (service, environment) and sends only the
columns the rules read; the facts are then computed by
``metrichub_core.dora.reference``, the same code that defines them, so every backend
answers the same numbers. Rows become events without re-validation
(``model_construct``): they were validated on the way in and the times are rebuilt
as UTC here, exactly as ``get`` would return them.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from metrichub_core.dora import DoraFacts, DoraScope, FactsRequest
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.models import Change, Deployment, Incident
from metrichub_plugin_postgres._rows import instant, moment

__all__ = ["dora_facts"]


async def dora_facts(conn: AsyncConnection[TupleRow], request: FactsRequest) -> list[DoraFacts]:
    """The facts of every window of ``request``, read in one repeatable-read snapshot."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        deployments = await _deployments(conn, request.scope)
        changes = await _changes(conn, request.scope)
        incidents = await _incidents(conn, request.scope)
    return facts_from_events(deployments, changes, incidents, request)


def _service(scope: DoraScope) -> tuple[str, tuple[Any, ...]]:
    return ("", ()) if scope.service is None else (" WHERE service = %s", (scope.service,))


async def _deployments(conn: AsyncConnection[TupleRow], scope: DoraScope) -> list[Deployment]:
    # Every environment of the service: an incident's ``caused_by`` may name any of them.
    where, params = _service(scope)
    cursor = await conn.execute(
        "SELECT source, id, service, environment, status, started_at, finished_at, change_ids, labels "
        f"FROM deployments{where}",
        params,
    )
    construct = Deployment.model_construct
    return [
        construct(
            source=source, id=id_, service=service, environment=environment, status=status,
            started_at=instant(started_at), finished_at=moment(finished_at), change_ids=change_ids, labels=labels,
            commit_sha=None, url=None,
        )
        for source, id_, service, environment, status, started_at, finished_at, change_ids, labels
        in await cursor.fetchall()
    ]  # fmt: skip


async def _changes(conn: AsyncConnection[TupleRow], scope: DoraScope) -> list[Change]:
    where, params = _service(scope)
    cursor = await conn.execute(f"SELECT source, id, service, committed_at FROM changes{where}", params)
    construct = Change.model_construct
    return [
        construct(source=source, id=id_, service=service, committed_at=instant(committed_at), merged_at=None, url=None)
        for source, id_, service, committed_at in await cursor.fetchall()
    ]


async def _incidents(conn: AsyncConnection[TupleRow], scope: DoraScope) -> list[Incident]:
    where = " WHERE environment = %s" + ("" if scope.service is None else " AND service = %s")
    params = (scope.environment,) + (() if scope.service is None else (scope.service,))
    cursor = await conn.execute(
        "SELECT source, id, service, environment, started_at, resolved_at, caused_by, deployment_related "
        f"FROM incidents{where}",
        params,
    )
    construct = Incident.model_construct
    return [
        construct(
            source=source, id=id_, service=service, environment=environment, started_at=instant(started_at),
            resolved_at=moment(resolved_at), caused_by=caused_by, deployment_related=related, severity=None,
            title=None, url=None,
        )
        for source, id_, service, environment, started_at, resolved_at, caused_by, related
        in await cursor.fetchall()
    ]  # fmt: skip
