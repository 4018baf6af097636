"""The incident side of a window's facts, read from ``dora_incident_links``: any options, either dialect.

The questions are written once, as a generator that yields ``(sql, params)`` and is sent
each answer's rows: SQLite answers them one by one (``run``); PostgreSQL first runs it
with empty answers to collect the questions and sends them in one pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from metrichub_core.dora import Bucket, FactsRequest, Summary
from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.rollups import IncidentFacts, ScopeSQL, WindowPlan

__all__ = ["Ask", "between", "link_facts", "run"]

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
