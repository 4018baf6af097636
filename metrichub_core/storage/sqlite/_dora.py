"""The DORA query side of ``sqlite:///``: facts from the derived tables.

A window is cut into whole months, whole days and the partial days at its edges.
Whole months and days are read from the rollups (``_dora_schema``), the
edges from the per-change and per-deployment rows; lead times come back exact
whenever the window holds at most ``FactsRequest.exact_limit`` of them. The planning,
merging and assembly are ``metrichub_core.storage.sql.rollups``', shared with the PostgreSQL plugin. A label
filter cannot use the rollups: it reads the scope's events and applies the
reference rules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from metrichub_core.dora import DoraFacts, FactsRequest, Summary, Window
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.events import rule_events, scope_events_sql
from metrichub_core.storage.sql.facts import lead_facts, link_facts, run
from metrichub_core.storage.sql.rollups import (
    BucketRows,
    DeployTally,
    IncidentFacts,
    ScopeSQL,
    WindowPlan,
    assemble,
    bucket_rows,
    merged_buckets_sql,
    summary_of,
    with_values,
)
from metrichub_core.storage.sqlite._dora_derive import refresh
from metrichub_core.storage.sqlite._dora_schema import (
    CAUSED_FAILURE,
    FIXED,
    INCIDENT_COUNTS,
    INCIDENT_KINDS,
    RESOLVED,
)

__all__ = ["SQLiteDoraData"]

T = TypeVar("T")


class SQLiteDoraData:
    """Mixed into ``SQLiteStorage``."""

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def refresh_dora(self) -> int:
        """Derive the DORA tables for the events ingested since the last query; return how many."""
        return await self.write(refresh)

    async def dora_facts(self, request: FactsRequest) -> list[DoraFacts]:
        if request.scope.labels:
            await self.refresh_dora()
            return await self._facts_from_events(request)

        def facts(conn: sqlite3.Connection) -> list[DoraFacts] | None:
            # Only hop to the writer when something is queued: reports stay one round trip.
            if conn.execute("SELECT EXISTS (SELECT 1 FROM dora_pending)").fetchone()[0]:
                return None
            return [_Query(conn, request, window).facts() for window in request.windows]

        found = await self.read(facts)
        if found is None:
            await self.refresh_dora()
            found = await self.read(lambda conn: [_Query(conn, request, window).facts() for window in request.windows])
        return found

    async def _facts_from_events(self, request: FactsRequest) -> list[DoraFacts]:
        def load(conn: sqlite3.Connection) -> list[DoraFacts]:
            deployments, changes, incidents = (
                rule_events(kind, conn.execute(sql, params).fetchall(), SQLITE)
                for kind, sql, params in scope_events_sql(request.scope, SQLITE)
            )
            return facts_from_events(deployments, changes, incidents, request)

        return await self.read(load)


_SECONDS = f"coalesce({SQLITE.seconds('lead_us')}, 0)"


class _Query:
    """The facts of one window, for a scope without labels."""

    def __init__(self, conn: sqlite3.Connection, request: FactsRequest, window: Window) -> None:
        self.conn, self.request = conn, request
        self.scope = ScopeSQL.of(request.scope, "?")
        self.plan = WindowPlan.of(window)
        # "service = ? AND" for one service; nothing for all (the rollups keep all services under '').
        self.where, self.scope_params, self.environment = self.scope.where, self.scope.params, self.scope.environment

    def facts(self) -> DoraFacts:
        deployments = self._deployments()
        lead = run(lead_facts(SQLITE, self.request, self.scope, self.plan), self._execute)
        options = self.request.options
        if options.attribution_window is None and options.recovery_clock == "incident":
            incidents = self._incidents_from_rollups(deployments.failed)
        else:
            # With a non-default attribution window or recovery clock: the links of the window.
            incidents, _ = run(
                link_facts(SQLITE, self.request, self.scope, self.plan, fixes=False),  # fixes are in the day counts
                self._execute,
            )
        return assemble(options, deployments, lead, incidents)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def _deployments(self) -> DeployTally:
        tally = DeployTally()
        if self.plan.days is not None:
            columns = "day, deployments, failures, rework, failed"
            tally.add_days(self.conn.execute(*self.scope.deploy_days_sql(columns, self.plan.days)))
        for start, end in self.plan.edges:
            tally.add_deployments(
                self.conn.execute(
                    f"SELECT listed_at, status, rework OR {FIXED}, {CAUSED_FAILURE} FROM deployments d "
                    f"WHERE {self.where}environment = ? AND listed_at >= ? AND listed_at < ?",
                    (*self.scope_params, self.environment, start, end),
                )
            )
        return tally

    def _merge(self, parts: list[str], params: list[Any]) -> BucketRows:
        """Merge rollup rows by bucket in SQL: counts and sums add, minima and maxima combine."""
        if not parts:
            return {}
        return bucket_rows(self.conn.execute(merged_buckets_sql(parts), params))

    def _summary(self, merged: BucketRows, exact_sql: str) -> Summary:
        """Exact values when few (``exact_sql`` over the window), else the merged buckets."""
        params = (*self.scope_params, self.environment, self.plan.since, self.plan.until)
        return summary_of(
            merged, self.request.exact_limit, lambda: (row[0] for row in self.conn.execute(exact_sql, params))
        )

    def _incidents_from_rollups(self, failed: int) -> IncidentFacts:
        """Under the default options: failed deployments from the day counts, durations from the rollups."""
        kinds: dict[str, list[str]] = {"restore": [], "recovery": [], "count": []}
        params: dict[str, list[Any]] = {"restore": [], "recovery": [], "count": []}
        if self.plan.days is not None:
            for kind in kinds:
                kinds[kind].append(
                    "SELECT bucket, n, total, low, high FROM dora_incident_days "
                    "WHERE service = ? AND environment = ? AND day >= ? AND day < ? AND kind = ?"
                )
                params[kind] += [self.scope.service, self.environment, *self.plan.days, kind]
        window = f"{self.where}environment = ? AND started_at >= ? AND started_at < ?"
        edges: dict[str, list[float]] = {"restore": [], "recovery": []}
        for start, end in self.plan.edges:
            edge = [*self.scope_params, self.environment, start, end]
            for kind, which, seconds in INCIDENT_KINDS:
                sql = f"SELECT {seconds} FROM dora_incident_links WHERE {window} AND {which}"
                edges[kind] += [row[0] for row in self.conn.execute(sql, edge)]
            for code, which in INCIDENT_COUNTS:
                kinds["count"].append(f"SELECT {code}, 1, 0, 0, 0 FROM dora_incident_links WHERE {window} AND {which}")
                params["count"] += edge
        counts = {bucket: value.count for bucket, value in self._merge(kinds["count"], params["count"]).items()}
        restore = self._summary(
            with_values(self._merge(kinds["restore"], params["restore"]), edges["restore"]),
            f"SELECT (resolved_at - started_at) / 1e6 FROM dora_incident_links WHERE {window} AND {RESOLVED}",
        )
        recovery = self._summary(
            with_values(self._merge(kinds["recovery"], params["recovery"]), edges["recovery"]),
            f"SELECT (resolved_at - started_at) / 1e6 FROM dora_incident_links WHERE {window} AND {RESOLVED} "
            "AND cause_at IS NOT NULL",
        )
        return IncidentFacts(
            failed=failed,
            recovery=recovery,
            recovery_open=counts.get(2, 0),
            restore=restore,
            restore_open=counts.get(1, 0),
            unattributed=counts.get(3, 0),
            negative_durations=counts.get(4, 0),
            incidents_known=self._incidents_known(),
        )

    def _incidents_known(self) -> bool:
        return bool(self.conn.execute(*self.scope.incidents_known_sql()).fetchone()[0])
