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
from metrichub_core.dora.reference import facts_from_events
from metrichub_core.models import Change, Deployment, Incident
from metrichub_core.storage._paging import to_micros
from metrichub_core.storage._sqlite_dora_schema import _REWORK_SQL, DAY_US, month_days, month_of

__all__ = ["SQLiteDoraData"]

T = TypeVar("T")
_EPOCH = date(1970, 1, 1)


class SQLiteDoraData:
    """Mixed into ``SQLiteStorage``."""

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    async def dora_facts(self, request: FactsRequest) -> list[DoraFacts]:
        if request.scope.labels:
            return await self._facts_from_events(request)
        return await self.read(lambda conn: [_Query(conn, request, window).facts() for window in request.windows])

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
        deployments, failures, labelled, days = self._deployments()
        lead, negative, missing = self._lead_times()
        links = self._links(failures, labelled)
        return DoraFacts(
            deployments=deployments,
            deploy_days=days,
            failure_status=failures,
            lead_times=lead,
            negative_lead_times=negative,
            missing_changes=missing,
            **links,
        )

    def _deployments(self) -> tuple[int, int, int, dict[date, int]]:
        count = failures = labelled = 0
        days: Counter[date] = Counter()
        if self.days is not None:
            for day, deployed, failed, rework in self.conn.execute(
                "SELECT day, deployments, failures, rework_labelled FROM dora_deploy_days "
                "WHERE service = ? AND environment = ? AND day >= ? AND day < ?",
                (self.service, self.environment, *self.days),
            ):
                if deployed:
                    days[_EPOCH + timedelta(days=day)] += deployed
                count, failures, labelled = count + deployed, failures + failed, labelled + rework
        for start, end in self.edges:
            for listed_at, status, rework in self.conn.execute(
                f"SELECT listed_at, status, {_REWORK_SQL} FROM deployments "
                f"WHERE {self.where}environment = ? AND listed_at >= ? AND listed_at < ?",
                (*self.scope_params, self.environment, start, end),
            ):
                if status == "success":
                    count += 1
                    labelled += rework
                    days[_EPOCH + timedelta(days=listed_at // DAY_US)] += 1
                elif status == "failure":
                    failures += 1
        return count, failures, labelled, dict(sorted(days.items()))

    def _lead_times(self) -> tuple[Summary, int, int]:
        merged: dict[int, list[float]] = {}

        def add(bucket: int, n: int, total: float, low: float, high: float) -> None:
            found = merged.get(bucket)
            if found is None:
                merged[bucket] = [n, total, low, high]
            else:
                found[0] += n
                found[1] += total
                found[2] = min(found[2], low)
                found[3] = max(found[3], high)

        key = (self.service, self.environment)
        for table, column, ranges in self._rollup_ranges():
            for start, end in ranges:
                for row in self.conn.execute(
                    f"SELECT bucket, n, total, low, high FROM {table} "
                    f"WHERE service = ? AND environment = ? AND {column} >= ? AND {column} < ?",
                    (*key, start, end),
                ):
                    add(*row)
        for start, end in self.edges:
            for bucket, seconds in self.conn.execute(
                f"SELECT bucket, seconds FROM dora_leads "
                f"WHERE {self.where}environment = ? AND deployed_at >= ? AND deployed_at < ?",
                (*self.scope_params, self.environment, start, end),
            ):
                value = seconds or 0.0
                add(bucket, 1, value, value, value)
        negative = int(merged.pop(-1, [0])[0])
        missing = int(merged.pop(-2, [0])[0])
        count = sum(int(values[0]) for values in merged.values())
        if count <= self.request.exact_limit:
            values = [
                row[0]
                for row in self.conn.execute(
                    f"SELECT seconds FROM dora_leads "
                    f"WHERE {self.where}environment = ? AND deployed_at >= ? AND deployed_at < ? AND bucket >= 0",
                    (*self.scope_params, self.environment, self.since, self.until),
                )
            ]
            return Summary.exact(values), negative, missing
        buckets = (Bucket(int(n), total, low, high) for n, total, low, high in merged.values())
        return Summary.of_buckets(buckets), negative, missing

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

    def _links(self, failures: int, labelled: int) -> dict[str, Any]:
        options = self.request.options
        limit = None if options.attribution_window is None else options.attribution_window // timedelta(microseconds=1)
        scope = (*self.scope_params, self.environment)
        failed = self.conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT cause_source, cause_id FROM dora_incident_links "
            f"WHERE {self.where}environment = ? AND cause_env = ? AND cause_status = 'success' "
            "AND cause_at >= ? AND cause_at < ? AND (by_time = 0 OR ? IS NULL OR started_at - cause_at <= ?))",
            (*scope, self.environment, self.since, self.until, limit, limit),
        ).fetchone()[0]
        if options.failed_deployments_count:
            failed += failures
        fixes = self.conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT fix_source, fix_id FROM dora_incident_links "
            f"WHERE {self.where}environment = ? AND fix_at >= ? AND fix_at < ? AND fix_labelled = 0)",
            (*scope, self.since, self.until),
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
        known = self.conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM incidents WHERE {self.where}environment = ?)",
            scope,
        ).fetchone()[0]
        return {
            "failed": failed,
            "rework": labelled + fixes,
            "recovery": Summary.exact(recovery),
            "recovery_open": recovery_open,
            "restore": Summary.exact(restore),
            "restore_open": restore_open,
            "unattributed": unattributed,
            "negative_durations": negative,
            "incidents_known": bool(known),
        }
