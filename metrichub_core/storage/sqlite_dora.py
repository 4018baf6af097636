"""The DORA query side of ``sqlite:///``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from metrichub_core.dora import DoraFacts, FactsRequest
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.models import Change, Deployment, Incident

__all__ = ["SQLiteDoraData"]

T = TypeVar("T")


class SQLiteDoraData:
    """Mixed into ``SQLiteStorage``."""

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def dora_facts(self, request: FactsRequest) -> list[DoraFacts]:
        from metrichub_core.storage.sqlite import _change, _deployment, _incident

        scope = request.scope

        def load(conn: sqlite3.Connection) -> tuple[list[Deployment], list[Change], list[Incident]]:
            service = "" if scope.service is None else " WHERE service = ?"
            params = () if scope.service is None else (scope.service,)
            deployments = [_deployment(row) for row in conn.execute(f"SELECT * FROM deployments{service}", params)]
            changes = [_change(row) for row in conn.execute(f"SELECT * FROM changes{service}", params)]
            where = " WHERE environment = ?" + (" AND service = ?" if scope.service is not None else "")
            incidents = [
                _incident(row) for row in conn.execute(f"SELECT * FROM incidents{where}", (scope.environment, *params))
            ]
            return deployments, changes, incidents

        deployments, changes, incidents = await self.read(load)
        return facts_from_events(deployments, changes, incidents, request)
