"""The dialect-independent half of the SQL backends' DORA queries and derived tables.

SQLite (built in) and PostgreSQL (``metrichub_plugin_postgres``) keep the same derived
data: per-change lead rows, and per (service, environment, UTC day or month) rollups of
mergeable 1 % buckets (``metrichub_core.dora._stats``), with ``''`` as the service that
sums all services. What does not depend on the SQL dialect lives here, once:

- day and month numbers (``day_of``, ``month_of``, ``month_days``);
- ``WindowPlan``: a window cut into whole months, whole days and the partial days at
  its edges (whole months and days are read from rollups, edges from event rows);
- ``ScopeSQL``: the scope's filters in a dialect's placeholder style;
- ``merged_buckets_sql``: merging rollup and edge rows per bucket, in SQL;
- ``DeployTally``, ``IncidentFacts`` and ``assemble``: the counts of a window and the
  ``DoraFacts`` they make; ``with_values`` adds single values to merged buckets;
- ``rollup_table`` and ``lead_rollups_ddl``: the DDL of the bucket rollup tables.

This module is part of the core's surface for storage backends: a storage plugin may
import it (as the PostgreSQL plugin does), and a change here must leave every DORA
figure of every backend as it was (the equivalence tests compare them with the
reference rules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any

from metrichub_core.dora import Bucket, DoraFacts, DoraOptions, DoraScope, Summary, Window, bucket_of
from metrichub_core.storage.sql.dialect import DAY_US, Dialect
from metrichub_core.storage.sql.paging import to_micros

__all__ = [
    "DAY_US",
    "BucketRows",
    "LONG_MONTHS",
    "MONTHS_BY_BUCKET",
    "DeployTally",
    "IncidentFacts",
    "ScopeSQL",
    "WindowPlan",
    "assemble",
    "bucket_rows",
    "day_of",
    "merged_buckets_sql",
    "month_days",
    "month_of",
    "lead_rollups_ddl",
    "rollup_table",
    "summary_of",
    "with_values",
]

_EPOCH = date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()

BucketRows = dict[int, Bucket]
"""Merged rollup rows by bucket (``-1`` negative spans, ``-2`` changes not stored)."""


def day_of(micros: int) -> int:
    """The UTC day number (days since 1970-01-01) of a time in microseconds."""
    return micros // DAY_US


def month_of(day: int) -> int:
    """The month number (``year * 12 + month - 1``) of a day number."""
    moment = date.fromordinal(_EPOCH_ORDINAL + day)
    return moment.year * 12 + moment.month - 1


def month_days(month: int) -> tuple[int, int]:
    """``[first, end)`` day numbers of a month number (``year * 12 + month - 1``)."""
    year, index = divmod(month, 12)
    first = date(year, index + 1, 1)
    following = date(year + 1, 1, 1) if index == 11 else date(year, index + 2, 1)
    return first.toordinal() - _EPOCH_ORDINAL, following.toordinal() - _EPOCH_ORDINAL


@dataclass(frozen=True)
class WindowPlan:
    """A window ``[since, until)`` in microseconds, cut for the rollups.

    ``days`` is ``[first, end)`` of the whole UTC days inside it (``None`` when there is
    none); ``edges`` are the partial days before and after them, in microseconds.
    """

    since: int
    until: int
    days: tuple[int, int] | None
    edges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, window: Window) -> WindowPlan:
        since, until = to_micros(window.since), to_micros(window.until)
        first, end = -(-since // DAY_US), until // DAY_US
        if first >= end:
            return cls(since, until, None, ((since, until),))
        edges = []
        if since < first * DAY_US:
            edges.append((since, first * DAY_US))
        if end * DAY_US < until:
            edges.append((end * DAY_US, until))
        return cls(since, until, (first, end), tuple(edges))

    def rollup_ranges(self, prefix: str = "dora_lead") -> list[tuple[str, str, list[tuple[int, int]]]]:
        """``(table, column, [start, end) ranges)``: whole months from ``dora_lead_months``, the
        other whole days from ``dora_lead_days`` (or those of another ``prefix``)."""
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
        return [(f"{prefix}_months", "month", months), (f"{prefix}_days", "day", days)]


@dataclass(frozen=True)
class ScopeSQL:
    """A scope without labels, as SQL in one placeholder style (``?`` or ``%s``).

    ``service`` is the rollups' key (``''`` = all services); ``where`` is
    ``"service = ? AND "`` for one service and empty for all, ``params`` its value.
    """

    mark: str
    service: str
    environment: str
    where: str
    params: tuple[str, ...]

    @classmethod
    def of(cls, scope: DoraScope, mark: str) -> ScopeSQL:
        if scope.service:
            return cls(mark, scope.service, scope.environment, f"service = {mark} AND ", (scope.service,))
        return cls(mark, "", scope.environment, "", ())

    def rollup_parts(
        self, dialect: Dialect, plan: WindowPlan, prefix: str = "dora_lead", stage: str | None = None
    ) -> tuple[list[str], list[Any]]:
        """The bucket rows of the window's whole months and days (of ``stage``, in the breakdown's
        rollups), one SELECT per range, for ``merged_buckets_sql``.

        A range of ``LONG_MONTHS`` months or more is summed per bucket as it is read, in the order
        of the months' ``<table>_by_bucket`` index: SQLite then streams the sums instead of sorting
        a year's ~1,000 rows per month (a quarter of a one-service yearly report's time).
        """
        parts: list[str] = []
        params: list[Any] = []
        mark = self.mark
        staged = f" AND stage = {mark}" if stage else ""
        for table, column, ranges in plan.rollup_ranges(prefix):
            for start, end in ranges:
                where = (
                    f"WHERE service = {mark} AND environment = {mark}{staged} AND {column} >= {mark} "
                    f"AND {column} < {mark}"
                )
                if column == "month" and end - start >= LONG_MONTHS:
                    by_bucket = dialect.indexed_by(f"{table}_by_bucket")
                    parts.append(f"SELECT {_BUCKET_SUMS} FROM {table}{by_bucket} {where}{_SUMMED}")
                else:
                    parts.append(f"SELECT bucket, n, total, low, high FROM {table} {where}")
                params += [self.service, self.environment, *([stage] if stage else []), start, end]
        return parts, params

    def deploy_days_sql(self, columns: str, days: tuple[int, int]) -> tuple[str, tuple[Any, ...]]:
        """``columns`` of the per-day deployment rollup rows of the day range ``days``."""
        mark = self.mark
        return (
            f"SELECT {columns} FROM dora_deploy_days "
            f"WHERE service = {mark} AND environment = {mark} AND day >= {mark} AND day < {mark}",
            (self.service, self.environment, *days),
        )

    def incidents_known_sql(self) -> tuple[str, tuple[str, ...]]:
        """Whether the scope has any incident at all."""
        return (
            f"SELECT EXISTS (SELECT 1 FROM incidents WHERE {self.where}environment = {self.mark})",
            (*self.params, self.environment),
        )


LONG_MONTHS = 12
"""Month ranges this long or longer are summed through the months' bucket-ordered index (``ScopeSQL.rollup_parts``)."""
MONTHS_BY_BUCKET = (
    "CREATE INDEX dora_lead_months_by_bucket ON dora_lead_months "
    "(service, environment, bucket, month, n, total, low, high);\n"
    "CREATE INDEX dora_stage_months_by_bucket ON dora_stage_months "
    "(service, environment, stage, bucket, month, n, total, low, high);\n"
    "DROP INDEX dora_leads_by_time;\n"
    "CREATE INDEX dora_leads_by_time ON dora_leads "
    "(service, environment, deployed_at, bucket, lead_us, merge_us, deploy_us, clamped)"
)
"""SQLite's migration 12: the month rollups in bucket order (read by ``ScopeSQL.rollup_parts``), and
the lead rows by time with every column their day rollups sum (recounting a day then reads the
index alone, not the rows it points to)."""
_BUCKET_SUMS = "bucket, sum(n), sum(total), min(low), max(high)"
_SUMMED = " GROUP BY bucket"


def merged_buckets_sql(parts: list[str]) -> str:
    """One query merging the bucket rows of ``parts`` (SELECTs of bucket, n, total, low, high).

    Counts and sums add, minima and maxima combine. The first, empty SELECT names the
    columns of the compound select whatever the parts name theirs.
    """
    if len(parts) == 1 and parts[0].endswith(_SUMMED):  # (``rollup_parts``' long month ranges) summed already
        return parts[0]
    header = "SELECT 0 AS bucket, 0 AS n, 0 AS total, 0 AS low, 0 AS high WHERE 1 = 0"
    union = " UNION ALL ".join([header, *parts])
    return f"SELECT {_BUCKET_SUMS} FROM ({union}) AS parts GROUP BY bucket"


def bucket_rows(rows: Iterable[Sequence[Any]]) -> BucketRows:
    """Rows of ``merged_buckets_sql`` by bucket."""
    return {row[0]: Bucket(int(row[1]), row[2], row[3], row[4]) for row in rows}


def with_values(merged: BucketRows, values: Iterable[float]) -> BucketRows:
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


def summary_of(merged: BucketRows, exact_limit: int, exact: Callable[[], Iterable[float]]) -> Summary:
    """Exact values (``exact()``) when the buckets hold at most ``exact_limit``, else the buckets."""
    if sum(bucket.count for bucket in merged.values()) <= exact_limit:
        return Summary.exact(exact())
    return Summary.of_buckets(merged.values())


class DeployTally:
    """The successful deployments of a window, from day rollups and from the edges' rows."""

    def __init__(self) -> None:
        self.count = self.failures = self.rework = self.failed = 0
        self._days: Counter[date] = Counter()

    def add_days(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rollup rows ``(day, successful, failure status, rework[, caused a failure])``."""
        for day, deployed, failing, reworked, *caused in rows:
            if deployed:
                self._days[_EPOCH + timedelta(days=day)] += deployed
            self.count += deployed
            self.failures += failing
            self.rework += reworked
            self.failed += caused[0] if caused else 0

    def add_deployments(self, rows: Iterable[Sequence[Any]]) -> None:
        """Deployment rows ``(listed_at, status, rework[, caused a failure])``."""
        for listed_at, status, reworked, *caused in rows:
            if status == "success":
                self.count += 1
                self.rework += reworked
                self.failed += caused[0] if caused else 0
                self._days[_EPOCH + timedelta(days=day_of(listed_at))] += 1
            elif status == "failure":
                self.failures += 1

    def deploy_days(self) -> dict[date, int]:
        return dict(sorted(self._days.items()))


@dataclass(frozen=True)
class IncidentFacts:
    """The incident side of a window's facts (see ``DoraFacts``)."""

    failed: int
    recovery: Summary
    recovery_open: int
    restore: Summary
    restore_open: int
    unattributed: int
    negative_durations: int
    caused_by_ignored: int
    incidents_known: bool
    recovery_before_deployment: int = 0
    """Only the deployment recovery clock (``link_facts``) can drop these."""


def assemble(
    options: DoraOptions,
    deployments: DeployTally,
    lead: tuple[Summary, int, int],
    incidents: IncidentFacts,
) -> DoraFacts:
    """The facts of a window; ``lead`` is (lead times, negative spans, changes not stored).

    With ``failed_deployments_count`` every ``failure`` deployment counts as failed.
    """
    lead_times, negative, missing = lead
    counted = {field.name: getattr(incidents, field.name) for field in fields(incidents)}
    if options.failed_deployments_count:
        counted["failed"] += deployments.failures
    return DoraFacts(
        deployments=deployments.count,
        deploy_days=deployments.deploy_days(),
        failure_status=deployments.failures,
        rework=deployments.rework,
        lead_times=lead_times,
        negative_lead_times=negative,
        missing_changes=missing,
        **counted,
    )


def rollup_table(name: str, keys: str, *, integer: str, real: str, suffix: str = "") -> str:
    """``CREATE TABLE`` of a bucket rollup: ``keys`` (column definitions), then bucket, n,
    total, low, high, keyed by all but the last four; ``integer``/``real`` are the dialect's
    types for counts and seconds."""
    names = [line.split()[0] for line in keys.split(",")] + ["bucket"]
    columns = [
        *(line.strip() for line in keys.split(",")),
        "bucket INTEGER NOT NULL",
        f"n {integer} NOT NULL",
        f"total {real} NOT NULL",
        f"low {real} NOT NULL",
        f"high {real} NOT NULL",
        f"PRIMARY KEY ({', '.join(names)})",
    ]
    body = ",\n    ".join(columns)
    return f"CREATE TABLE {name} (\n    {body}\n){suffix}"


def lead_rollups_ddl(*, integer: str, real: str, suffix: str = "") -> str:
    """The indexes of ``dora_leads`` and the lead-time rollup tables (days, months), in one dialect."""
    keys = "service TEXT NOT NULL, environment TEXT NOT NULL, {} INTEGER NOT NULL"
    return ";\n".join(
        [
            "CREATE INDEX dora_leads_by_time ON dora_leads (service, environment, deployed_at)",
            "CREATE INDEX dora_leads_by_env_time ON dora_leads (environment, deployed_at)",
            rollup_table("dora_lead_days", keys.format("day"), integer=integer, real=real, suffix=suffix),
            "CREATE INDEX dora_lead_days_by_env ON dora_lead_days (environment, day)",
            rollup_table("dora_lead_months", keys.format("month"), integer=integer, real=real, suffix=suffix),
        ]
    )
