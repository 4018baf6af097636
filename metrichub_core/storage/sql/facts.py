"""Questions both backends ask of the derived tables for a window's facts, in either dialect.

- ``lead_facts``: lead times from the lead rollups and the edges' lead rows;
- ``link_facts``: the incident side, from ``dora_incident_links``, under any options.

The questions are written once, as generators that yield ``(sql, params)`` and are sent
each answer's rows: SQLite answers them one by one (``run``); PostgreSQL first runs them
with empty answers to collect the questions and sends them in one pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from metrichub_core.dora import Bucket, FactsRequest, Summary
from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.rollups import IncidentFacts, ScopeSQL, WindowPlan, bucket_rows, merged_buckets_sql

__all__ = ["Ask", "between", "lead_facts", "link_facts", "run"]

T = TypeVar("T")
Rows = Sequence[Sequence[Any]]
Ask = Generator[tuple[str, tuple[Any, ...]], Rows, T]
"""Questions ``(sql, params)`` out, their rows in, a ``T`` at the end."""


def run(ask: Ask[T], execute: Callable[[str, tuple[Any, ...]], Rows]) -> T:
    """Answer every question of ``ask`` with ``execute``; return its result."""
    try:
        question = next(ask)
        while True:
            question = ask.send(execute(*question))
    except StopIteration as stop:
        result: T = stop.value
        return result


def between(dialect: Dialect, scope: ScopeSQL, column: str, start: int, end: int) -> tuple[str, tuple[Any, ...]]:
    """``column`` in ``[start, end)`` within the scope's service (if any) and environment.

    On PostgreSQL one service's range is a row comparison, which only the (service,
    environment, time) index can serve, so the plan does not hinge on fresh statistics.
    """
    mark = dialect.mark
    if scope.params and not dialect.json_as_text:
        return (
            f"(service, environment, {column}) >= ({mark}, {mark}, {mark}) "
            f"AND (service, environment, {column}) < ({mark}, {mark}, {mark})",
            (scope.service, scope.environment, start, scope.service, scope.environment, end),
        )
    where = f"{scope.where}environment = {mark} AND {column} >= {mark} AND {column} < {mark}"
    return where, (*scope.params, scope.environment, start, end)


def _value(rows: Rows) -> Any:
    return rows[0][0] if rows else 0


def lead_facts(
    dialect: Dialect, request: FactsRequest, scope: ScopeSQL, plan: WindowPlan, *, planning: bool = False
) -> Ask[tuple[Summary, int, int]]:
    """Lead times of the window, and how many were negative or of changes not stored.

    Whole months and days from the rollups, the edges from the lead rows, merged per bucket
    by the database: one query and at most a few thousand rows whatever the window. Exact
    values when the window holds at most ``request.exact_limit`` of them.
    """
    parts, params = scope.lead_rollups(plan)
    seconds = f"coalesce({dialect.seconds('lead_us')}, 0)"
    for start, end in plan.edges:
        where, edge = between(dialect, scope, "deployed_at", start, end)
        parts.append(f"SELECT bucket, 1, {seconds}, {seconds}, {seconds} FROM dora_leads WHERE {where}")
        params += edge
    merged = bucket_rows((yield merged_buckets_sql(parts), tuple(params))) if parts else {}
    negative = merged.pop(-1, Bucket(0, 0, 0, 0)).count
    missing = merged.pop(-2, Bucket(0, 0, 0, 0)).count
    if sum(bucket.count for bucket in merged.values()) <= request.exact_limit and not planning:
        where, window = between(dialect, scope, "deployed_at", plan.since, plan.until)
        leads = yield f"SELECT lead_us FROM dora_leads WHERE {where} AND bucket >= 0", window
        return Summary.exact(lead_us / 1e6 for (lead_us,) in leads), negative, missing
    return Summary.of_buckets(merged.values()), negative, missing


def link_facts(
    dialect: Dialect, request: FactsRequest, scope: ScopeSQL, plan: WindowPlan, *, fixes: bool, planning: bool = False
) -> Ask[tuple[IncidentFacts, int]]:
    """The incident facts of the window, and (with ``fixes``) how many deployments fixed an
    incident without being labelled rework (they count as rework too).

    The rules are the reference's: an incident found by time is attributed only within the
    attribution window; recovery runs from the incident's start or, with
    ``recovery_clock="deployment"``, from the attributed deployment; negative spans are
    counted, not measured. ``planning``: a dry run (no question depends on an answer).
    """
    mark, options = dialect.mark, request.options
    limit = None if options.attribution_window is None else options.attribution_window // timedelta(microseconds=1)
    within = f"(NOT by_time OR {dialect.typed(mark, 'int8')} IS NULL OR started_at - cause_at <= {mark})"
    where, params = between(dialect, scope, "cause_at", plan.since, plan.until)
    failed = _value(
        (
            yield (
                "SELECT count(*) FROM (SELECT DISTINCT cause_source, cause_id FROM dora_incident_links "
                f"WHERE {where} AND cause_env = {mark} AND cause_status = 'success' AND {within}) AS causes",
                (*params, scope.environment, limit, limit),
            )
        )
    )
    fixed = 0
    if fixes:
        where, params = between(dialect, scope, "fix_at", plan.since, plan.until)
        fixed = _value(
            (
                yield (
                    "SELECT count(*) FROM (SELECT DISTINCT fix_source, fix_id FROM dora_incident_links "
                    f"WHERE {where} AND NOT fix_labelled) AS fixes",
                    params,
                )
            )
        )

    # The incidents of the window with their durations in microseconds (restore: from start to
    # resolution; recovery: from the clock's start, for attributed ones); NULL where not counted.
    where, params = between(dialect, scope, "started_at", plan.since, plan.until)
    values = (
        "SELECT resolved_at, related, attributed, "
        "CASE WHEN resolved_at >= started_at THEN resolved_at - started_at END AS restore_us, "
        "CASE WHEN attributed AND resolved_at >= started_at "
        f"THEN resolved_at - CASE WHEN {mark} THEN started_at ELSE cause_at END END AS recovery_us "
        f"FROM (SELECT *, cause_at IS NOT NULL AND {within} AS attributed FROM dora_incident_links WHERE {where}) AS l"
    )
    params = (options.recovery_clock == "incident", limit, limit, *params)
    counts = yield (
        "SELECT count(*) FILTER (WHERE resolved_at IS NULL), "
        "count(*) FILTER (WHERE resolved_at IS NULL AND attributed), "
        "count(*) FILTER (WHERE related AND NOT attributed), "
        "count(*) FILTER (WHERE restore_us IS NULL AND resolved_at IS NOT NULL) "
        "+ count(*) FILTER (WHERE recovery_us < 0), "
        f"count(restore_us), count(*) FILTER (WHERE recovery_us >= 0) FROM ({values}) AS v",
        params,
    )
    restore_open, recovery_open, unattributed, negative, restores, recoveries = counts[0] if counts else (0,) * 6
    summaries: dict[str, Summary] = {}
    for name, column in (("restore", "restore_us"), ("recovery", "recovery_us")):
        seconds = dialect.seconds(column)
        found = yield (
            f"SELECT count(*), sum({seconds}), min({seconds}), max({seconds}) FROM ({values}) AS v "
            f"WHERE {column} >= 0 GROUP BY {dialect.bucket(seconds)}",
            params,
        )
        summaries[name] = Summary.of_buckets(Bucket(int(n), total, low, high) for n, total, low, high in found)
    if not planning and min(restores, recoveries) <= request.exact_limit:
        found = yield (f"SELECT restore_us, recovery_us FROM ({values}) AS v", params)
        if restores <= request.exact_limit:
            summaries["restore"] = Summary.exact(us / 1e6 for us, _ in found if us is not None)
        if recoveries <= request.exact_limit:
            summaries["recovery"] = Summary.exact(us / 1e6 for _, us in found if us is not None and us >= 0)
    known = _value((yield scope.incidents_known_sql()))
    incidents = IncidentFacts(
        failed=failed,
        recovery=summaries["recovery"],
        recovery_open=recovery_open,
        restore=summaries["restore"],
        restore_open=restore_open,
        unattributed=unattributed,
        negative_durations=negative,
        incidents_known=bool(known),
    )
    return incidents, fixed
