"""The DORA query side of ``sqlite:///``: facts from the derived tables.

A window is cut into whole months, whole days and the partial days at its edges.
Whole months and days are read from the rollups (``_sqlite_dora_schema``), the
edges from the per-change and per-deployment rows; lead times come back exact
whenever the window holds at most ``FactsRequest.exact_limit`` of them. A label
filter cannot use the rollups: it reads the scope's events and applies the
reference rules.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

from metrichub_core.dora import Bucket, DoraFacts, FactsRequest, Summary, Window
from metrichub_core.dora._stats import bucket_of
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.models import Change, Deployment, Incident
from metrichub_core.storage._paging import to_micros
from metrichub_core.storage._sqlite_dora_derive import refresh
from metrichub_core.storage._sqlite_dora_schema import (
    CAUSED_FAILURE,
    DAY_US,
    FIXED,
    INCIDENT_COUNTS,
    INCIDENT_KINDS,
    RESOLVED,
    REWORK_SQL,
    month_days,
    month_of,
)

__all__ = ["SQLiteDoraData"]

T = TypeVar("T")
_EPOCH = date(1970, 1, 1)


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


class _Query:
    """The facts of one window, for a scope without labels."""

    def __init__(self, conn: sqlite3.Connection, request: FactsRequest, window: Window) -> None:
        self.conn, self.request = conn, request
        scope = request.scope
        self.service, self.environment = scope.service or "", scope.environment
        # "service = ? AND" for one service; nothing for all (the rollups keep all services under '').
        self.where = "service = ? AND " if scope.service else ""
        self.scope_params: tuple[str, ...] = (scope.service,) if scope.service else ()
        self.since, self.until = to_micros(window.since), to_micros(window.until)
        first, end = -(-self.since // DAY_US), self.until // DAY_US
        self.edges: list[tuple[int, int]] = []
        self.days: tuple[int, int] | None = None
        if first >= end:
            self.edges.append((self.since, self.until))
        else:
            self.days = (first, end)
            if self.since < first * DAY_US:
                self.edges.append((self.since, first * DAY_US))
            if end * DAY_US < self.until:
                self.edges.append((end * DAY_US, self.until))

    def facts(self) -> DoraFacts:
        deployments = self._deployments()
        lead, negative, missing = self._lead_times()
        options = self.request.options
        if options.attribution_window is None and options.recovery_clock == "incident":
            links = self._incidents_from_rollups(deployments["failed"])
        else:
            links = self._incidents_from_links()
        if options.failed_deployments_count:
            links["failed"] += deployments["failures"]
        return DoraFacts(
            deployments=deployments["count"],
            deploy_days=deployments["days"],
            failure_status=deployments["failures"],
            rework=deployments["rework"],
            lead_times=lead,
            negative_lead_times=negative,
            missing_changes=missing,
            **links,
        )

    def _deployments(self) -> dict[str, Any]:
        count = failures = rework = failed = 0
        days: Counter[date] = Counter()
        if self.days is not None:
            for day, deployed, failing, reworked, caused in self.conn.execute(
                "SELECT day, deployments, failures, rework, failed FROM dora_deploy_days "
                "WHERE service = ? AND environment = ? AND day >= ? AND day < ?",
                (self.service, self.environment, *self.days),
            ):
                if deployed:
                    days[_EPOCH + timedelta(days=day)] += deployed
                count, failures, rework, failed = (
                    count + deployed,
                    failures + failing,
                    rework + reworked,
                    failed + caused,
                )
        for start, end in self.edges:
            for listed_at, status, reworked, caused in self.conn.execute(
                f"SELECT listed_at, status, {REWORK_SQL} OR {FIXED}, {CAUSED_FAILURE} FROM deployments d "
                f"WHERE {self.where}environment = ? AND listed_at >= ? AND listed_at < ?",
                (*self.scope_params, self.environment, start, end),
            ):
                if status == "success":
                    count, rework, failed = count + 1, rework + reworked, failed + caused
                    days[_EPOCH + timedelta(days=listed_at // DAY_US)] += 1
                elif status == "failure":
                    failures += 1
        return {
            "count": count,
            "failures": failures,
            "rework": rework,
            "failed": failed,
            "days": dict(sorted(days.items())),
        }

    def _lead_times(self) -> tuple[Summary, int, int]:
        parts, params = [], []
        for table, column, ranges in self._rollup_ranges():
            for start, end in ranges:
                parts.append(
                    f"SELECT bucket, n, total, low, high FROM {table} "
                    f"WHERE service = ? AND environment = ? AND {column} >= ? AND {column} < ?"
                )
                params += [self.service, self.environment, start, end]
        for start, end in self.edges:
            parts.append(
                "SELECT bucket, 1, coalesce(seconds, 0), coalesce(seconds, 0), coalesce(seconds, 0) FROM dora_leads "
                f"WHERE {self.where}environment = ? AND deployed_at >= ? AND deployed_at < ?"
            )
            params += [*self.scope_params, self.environment, start, end]
        merged = self._merge(parts, params)
        negative = merged.pop(-1, Bucket(0, 0, 0, 0)).count
        missing = merged.pop(-2, Bucket(0, 0, 0, 0)).count
        summary = self._summary(
            merged,
            "SELECT seconds FROM dora_leads "
            f"WHERE {self.where}environment = ? AND deployed_at >= ? AND deployed_at < ? AND bucket >= 0",
        )
        return summary, negative, missing

    def _merge(self, parts: list[str], params: list[Any]) -> dict[int, Bucket]:
        """Merge rollup rows by bucket in SQL: counts and sums add, minima and maxima combine."""
        if not parts:
            return {}
        # The first SELECT names the columns of a compound select.
        union = " UNION ALL ".join(["SELECT 0 AS bucket, 0 AS n, 0 AS total, 0 AS low, 0 AS high WHERE 0", *parts])
        sql = f"SELECT bucket, sum(n), sum(total), min(low), max(high) FROM ({union}) GROUP BY bucket"
        return {row[0]: Bucket(int(row[1]), row[2], row[3], row[4]) for row in self.conn.execute(sql, params)}

    def _summary(self, merged: dict[int, Bucket], exact_sql: str) -> Summary:
        """Exact values when few (``exact_sql`` over the window), else the merged buckets."""
        if sum(bucket.count for bucket in merged.values()) <= self.request.exact_limit:
            params = (*self.scope_params, self.environment, self.since, self.until)
            return Summary.exact(row[0] for row in self.conn.execute(exact_sql, params))
        return Summary.of_buckets(merged.values())

    def _rollup_ranges(self) -> list[tuple[str, str, list[tuple[int, int]]]]:
        """Whole months from ``dora_lead_months``, the other whole days from ``dora_lead_days``."""
        if self.days is None:
            return []
        months: list[tuple[int, int]] = []
        days: list[tuple[int, int]] = []
        cursor, end = self.days
        while cursor < end:
            month = month_of(cursor)
            first, following = month_days(month)
            if first == cursor and following <= end:
                if months and months[-1][1] == month:
                    months[-1] = (months[-1][0], month + 1)
                else:
                    months.append((month, month + 1))
                cursor = following
            else:
                stop = min(following, end)
                days.append((cursor, stop))
                cursor = stop
        return [("dora_lead_months", "month", months), ("dora_lead_days", "day", days)]

    def _incidents_from_rollups(self, failed: int) -> dict[str, Any]:
        """Under the default options: failed deployments from the day counts, durations from the rollups."""
        kinds: dict[str, list[str]] = {"restore": [], "recovery": [], "count": []}
        params: dict[str, list[Any]] = {"restore": [], "recovery": [], "count": []}
        if self.days is not None:
            for kind in kinds:
                kinds[kind].append(
                    "SELECT bucket, n, total, low, high FROM dora_incident_days "
                    "WHERE service = ? AND environment = ? AND day >= ? AND day < ? AND kind = ?"
                )
                params[kind] += [self.service, self.environment, *self.days, kind]
        window = f"{self.where}environment = ? AND started_at >= ? AND started_at < ?"
        edges: dict[str, list[float]] = {"restore": [], "recovery": []}
        for start, end in self.edges:
            edge = [*self.scope_params, self.environment, start, end]
            for kind, which, seconds in INCIDENT_KINDS:
                sql = f"SELECT {seconds} FROM dora_incident_links WHERE {window} AND {which}"
                edges[kind] += [row[0] for row in self.conn.execute(sql, edge)]
            for code, which in INCIDENT_COUNTS:
                kinds["count"].append(f"SELECT {code}, 1, 0, 0, 0 FROM dora_incident_links WHERE {window} AND {which}")
                params["count"] += edge
        counts = {bucket: value.count for bucket, value in self._merge(kinds["count"], params["count"]).items()}
        restore = self._summary(
            _with_values(self._merge(kinds["restore"], params["restore"]), edges["restore"]),
            f"SELECT (resolved_at - started_at) / 1e6 FROM dora_incident_links WHERE {window} AND {RESOLVED}",
        )
        recovery = self._summary(
            _with_values(self._merge(kinds["recovery"], params["recovery"]), edges["recovery"]),
            f"SELECT (resolved_at - started_at) / 1e6 FROM dora_incident_links WHERE {window} AND {RESOLVED} "
            "AND cause_at IS NOT NULL",
        )
        return {
            "failed": failed,
            "recovery": recovery,
            "recovery_open": counts.get(2, 0),
            "restore": restore,
            "restore_open": counts.get(1, 0),
            "unattributed": counts.get(3, 0),
            "negative_durations": counts.get(4, 0),
            "incidents_known": self._incidents_known(),
        }

    def _incidents_known(self) -> bool:
        return bool(
            self.conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM incidents WHERE {self.where}environment = ?)",
                (*self.scope_params, self.environment),
            ).fetchone()[0]
        )

    def _incidents_from_links(self) -> dict[str, Any]:
        """With a non-default attribution window or recovery clock: read the incident links of the window."""
        options = self.request.options
        limit = None if options.attribution_window is None else options.attribution_window // timedelta(microseconds=1)
        scope = (*self.scope_params, self.environment)
        failed = self.conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT cause_source, cause_id FROM dora_incident_links "
            f"WHERE {self.where}environment = ? AND cause_env = ? AND cause_status = 'success' "
            "AND cause_at >= ? AND cause_at < ? AND (by_time = 0 OR ? IS NULL OR started_at - cause_at <= ?))",
            (*scope, self.environment, self.since, self.until, limit, limit),
        ).fetchone()[0]

        recovery: list[float] = []
        restore: list[float] = []
        recovery_open = restore_open = unattributed = negative = 0
        for started, resolved, related, cause_at, by_time in self.conn.execute(
            "SELECT started_at, resolved_at, related, cause_at, by_time FROM dora_incident_links "
            f"WHERE {self.where}environment = ? AND started_at >= ? AND started_at < ?",
            (*scope, self.since, self.until),
        ):
            attributed = cause_at is not None and (not by_time or limit is None or started - cause_at <= limit)
            if related and not attributed:
                unattributed += 1
            if resolved is None:
                restore_open += 1
                recovery_open += attributed
                continue
            if resolved < started:
                negative += 1
                continue
            restore.append((resolved - started) / 1e6)
            if attributed:
                start = started if options.recovery_clock == "incident" else cause_at
                if resolved < start:
                    negative += 1
                else:
                    recovery.append((resolved - start) / 1e6)
        return {
            "failed": failed,
            "recovery": Summary.exact(recovery),
            "recovery_open": recovery_open,
            "restore": Summary.exact(restore),
            "restore_open": restore_open,
            "unattributed": unattributed,
            "negative_durations": negative,
            "incidents_known": self._incidents_known(),
        }


def _with_values(merged: dict[int, Bucket], values: list[float]) -> dict[int, Bucket]:
    """Add single values (from a window's partial days) to merged buckets."""
    for value in values:
        key = bucket_of(value)
        found = merged.get(key)
        merged[key] = (
            Bucket(1, value, value, value)
            if found is None
            else Bucket(found.count + 1, found.total + value, min(found.low, value), max(found.high, value))
        )
    return merged
