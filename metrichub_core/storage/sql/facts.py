"""Questions both backends ask of the derived tables for a window's facts, in either dialect.

- ``window_facts``: the facts of one window (scope without labels), from the pieces below;
- ``lead_facts``: lead times from the lead rollups and the edges' lead rows;
- ``rollup_incident_facts``: the incident side under the default options, from the
  incident day rollups and the edges' links;
- ``link_facts``: the incident side from ``dora_incident_links``, under any options;
- ``stage_facts``: the lead-time breakdown from its rollups and the edges' stage rows.

A window is cut into whole months, whole days and the partial days at its edges
(``WindowPlan``): whole months and days are read from the rollups, the edges from rows.

The questions are written once, as generators that yield ``(sql, params)`` and are sent
each answer's rows: SQLite answers them one by one (``run``); PostgreSQL first runs them
with empty answers to collect the questions and sends them in one pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from metrichub_core.dora import Bucket, DoraFacts, FactsRequest, Summary, Window
from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.dora import CAUSED_FAILURE, FIXED, INCIDENT_COUNTS, incident_kinds
from metrichub_core.storage.sql.rollups import (
    BucketRows,
    DeployTally,
    IncidentFacts,
    ScopeSQL,
    WindowPlan,
    assemble,
    bucket_rows,
    merged_buckets_sql,
    with_values,
)
from metrichub_core.storage.sql.stages import STAGES

__all__ = ["Ask", "between", "lead_facts", "link_facts", "rollup_incident_facts", "run", "stage_facts", "window_facts"]

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


def rollup_incident_facts(
    dialect: Dialect, request: FactsRequest, scope: ScopeSQL, plan: WindowPlan, failed: int, *, planning: bool = False
) -> Ask[IncidentFacts]:
    """The incident side under the default options; ``failed`` is the day counts' failed deployments."""
    mark = dialect.mark
    parts: dict[str, list[str]] = {"restore": [], "recovery": [], "count": []}
    params: dict[str, list[Any]] = {"restore": [], "recovery": [], "count": []}
    if plan.days is not None:
        for kind, kind_parts in parts.items():
            kind_parts.append(
                "SELECT bucket, n, total, low, high FROM dora_incident_days "
                f"WHERE service = {mark} AND environment = {mark} AND day >= {mark} AND day < {mark} AND kind = {mark}"
            )
            params[kind] += [scope.service, scope.environment, *plan.days, kind]
    edges: dict[str, list[float]] = {"restore": [], "recovery": []}
    for start, end in plan.edges:
        where, edge = between(dialect, scope, "started_at", start, end)
        for kind, which, seconds in incident_kinds(dialect):
            found = yield f"SELECT {seconds} FROM dora_incident_links WHERE {where} AND {which}", edge
            edges[kind] += [row[0] for row in found]
        for code, which in INCIDENT_COUNTS:
            parts["count"].append(f"SELECT {code}, 1, 0, 0, 0 FROM dora_incident_links WHERE {where} AND {which}")
            params["count"] += edge
    merged: dict[str, BucketRows] = {}
    for kind, kind_parts in parts.items():
        sql = merged_buckets_sql(kind_parts)
        merged[kind] = bucket_rows((yield sql, tuple(params[kind]))) if kind_parts else {}
    counts = {bucket: value.count for bucket, value in merged["count"].items()}
    where, window = between(dialect, scope, "started_at", plan.since, plan.until)
    summaries: dict[str, Summary] = {}
    for kind, which, seconds in incident_kinds(dialect):
        buckets = with_values(merged[kind], edges[kind])
        if sum(bucket.count for bucket in buckets.values()) <= request.exact_limit and not planning:
            found = yield f"SELECT {seconds} FROM dora_incident_links WHERE {where} AND {which}", window
            summaries[kind] = Summary.exact(row[0] for row in found)
        else:
            summaries[kind] = Summary.of_buckets(buckets.values())
    known = _value((yield scope.incidents_known_sql()))
    return IncidentFacts(
        failed=failed,
        recovery=summaries["recovery"],
        recovery_open=counts.get(2, 0),
        restore=summaries["restore"],
        restore_open=counts.get(1, 0),
        unattributed=counts.get(3, 0),
        negative_durations=counts.get(4, 0),
        caused_by_ignored=counts.get(5, 0),
        incidents_known=bool(known),
    )


def _value(rows: Rows) -> Any:
    return rows[0][0] if rows else 0


def window_facts(dialect: Dialect, request: FactsRequest, window: Window, *, planning: bool = False) -> Ask[DoraFacts]:
    """The facts of one window of ``request`` (whose scope has no labels).

    Under the default options every count comes from the day rollups and the edges' rows;
    with an attribution window, the deployment recovery clock or ``failed_deployments_count``
    (a ``caused_by`` may then name a failed run), the incident side is read from the window's
    links (``link_facts``). ``planning``: a dry run (see the module).
    """
    scope, plan = ScopeSQL.of(request.scope, dialect.mark), WindowPlan.of(window)
    tally = DeployTally()
    if plan.days is not None:
        tally.add_days((yield scope.deploy_days_sql("day, deployments, failures, rework, failed", plan.days)))
    for start, end in plan.edges:
        where, params = between(dialect, scope, "listed_at", start, end)
        tally.add_deployments(
            (
                yield (
                    f"SELECT listed_at, status, rework OR {FIXED}, {CAUSED_FAILURE} FROM deployments d WHERE {where}",
                    params,
                )
            )
        )
    lead = yield from lead_facts(dialect, request, scope, plan, planning=planning)
    options = request.options
    defaults = options.attribution_window is None and options.recovery_clock == "incident"
    if defaults and not options.failed_deployments_count:
        incidents = yield from rollup_incident_facts(dialect, request, scope, plan, tally.failed, planning=planning)
    else:  # the day counts hold the fixes already
        incidents, _ = yield from link_facts(dialect, request, scope, plan, fixes=False, planning=planning)
    stages = yield from stage_facts(dialect, request, scope, plan, planning=planning)
    return replace(assemble(options, tally, lead, incidents), **stages)


def lead_facts(
    dialect: Dialect, request: FactsRequest, scope: ScopeSQL, plan: WindowPlan, *, planning: bool = False
) -> Ask[tuple[Summary, int, int]]:
    """Lead times of the window, and how many were negative or of changes not stored.

    Whole months and days from the rollups, the edges from the lead rows, merged per bucket
    by the database: one query and at most a few thousand rows whatever the window. Exact
    values when the window holds at most ``request.exact_limit`` of them.
    """
    parts, params = scope.rollup_parts(dialect, plan)
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
    attribution window; with ``failed_deployments_count`` an incident is attributed to the
    failed run its ``caused_by`` names (``named_fail_*``) when there is one; recovery runs
    from the incident's start or, with ``recovery_clock="deployment"``, from the attributed
    deployment; negative spans are counted, not measured. ``planning``: a dry run (no
    question depends on an answer).
    """
    mark, options = dialect.mark, request.options
    limit = None if options.attribution_window is None else options.attribution_window // timedelta(microseconds=1)
    within = f"(NOT by_time OR {dialect.typed(mark, 'int8')} IS NULL OR started_at - cause_at <= {mark})"
    # The cause columns hold the deployment under the default options; a named failed run replaces it
    # under failed_deployments_count (it counts in the rate through the failure-status count).
    failure = options.failed_deployments_count
    default_cause = "named_fail_id IS NULL AND " if failure else ""
    named_failure = "named_fail_at IS NOT NULL" if failure else "false"
    where, params = between(dialect, scope, "cause_at", plan.since, plan.until)
    failed = _value(
        (
            yield (
                "SELECT count(*) FROM (SELECT DISTINCT cause_source, cause_id FROM dora_incident_links "
                f"WHERE {where} AND {default_cause}cause_env = {mark} AND cause_status = 'success' AND {within}) "
                "AS causes",
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
        "SELECT resolved_at, related, attributed, named AND NOT honoured AS ignored, "
        "CASE WHEN resolved_at >= started_at THEN resolved_at - started_at END AS restore_us, "
        "CASE WHEN attributed AND resolved_at >= started_at "
        f"THEN resolved_at - CASE WHEN {mark} THEN started_at ELSE clock_at END END AS recovery_us "
        f"FROM (SELECT *, {named_failure} OR cause_at IS NOT NULL AND {within} AS attributed, "
        f"{named_failure} OR cause_at IS NOT NULL AND NOT by_time AS honoured, "
        f"{'coalesce(named_fail_at, cause_at)' if failure else 'cause_at'} AS clock_at "
        f"FROM dora_incident_links WHERE {where}) AS l"
    )
    params = (options.recovery_clock == "incident", limit, limit, *params)
    counts = yield (
        "SELECT count(*) FILTER (WHERE resolved_at IS NULL), "
        "count(*) FILTER (WHERE resolved_at IS NULL AND attributed), "
        "count(*) FILTER (WHERE related AND NOT attributed), "
        "count(*) FILTER (WHERE restore_us IS NULL AND resolved_at IS NOT NULL), "
        "count(*) FILTER (WHERE recovery_us < 0), "  # resolved after their start, before their deployment's finish
        "count(*) FILTER (WHERE ignored), "
        f"count(restore_us), count(*) FILTER (WHERE recovery_us >= 0) FROM ({values}) AS v",
        params,
    )
    restore_open, recovery_open, unattributed, negative, before_deployment, ignored, restores, recoveries = (
        counts[0] if counts else (0,) * 8
    )
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
        caused_by_ignored=ignored,
        incidents_known=bool(known),
        recovery_before_deployment=before_deployment,
    )
    return incidents, fixed


def stage_facts(
    dialect: Dialect, request: FactsRequest, scope: ScopeSQL, plan: WindowPlan, *, planning: bool = False
) -> Ask[dict[str, Any]]:
    """The lead-time breakdown of the window (``DoraFacts``' ``commit_to_merge``, ``merge_to_deploy``,
    ``merged_before_commit``, ``merged_after_deploy``), as ``lead_facts`` reads lead times: whole
    months and days from ``dora_stage_months``/``dora_stage_days``, the edges from ``dora_leads``,
    exact values when the window holds at most ``request.exact_limit`` changes with a merge."""
    summaries: list[BucketRows] = []
    clamped: list[int] = []
    for stage, column, clamp in STAGES:
        parts, params = scope.rollup_parts(dialect, plan, "dora_stage", stage)
        seconds = dialect.seconds(column)
        for start, end in plan.edges:
            where, edge = between(dialect, scope, "deployed_at", start, end)
            parts += [
                f"SELECT {dialect.bucket(seconds)}, 1, {seconds}, {seconds}, {seconds} FROM dora_leads "
                f"WHERE {where} AND {column} IS NOT NULL",
                f"SELECT -1, 1, 0, 0, 0 FROM dora_leads WHERE {where} AND clamped = {clamp}",
            ]
            params += [*edge, *edge]
        merged = bucket_rows((yield merged_buckets_sql(parts), tuple(params))) if parts else {}
        clamped.append(merged.pop(-1, Bucket(0, 0, 0, 0)).count)
        summaries.append(merged)
    found = [Summary.of_buckets(merged.values()) for merged in summaries]
    if found[0].count <= request.exact_limit and not planning:
        where, window = between(dialect, scope, "deployed_at", plan.since, plan.until)
        rows = yield f"SELECT merge_us, deploy_us FROM dora_leads WHERE {where} AND merge_us IS NOT NULL", window
        found = [Summary.exact(row[index] / 1e6 for row in rows) for index in (0, 1)]
    return {
        "commit_to_merge": found[0],
        "merge_to_deploy": found[1],
        "merged_before_commit": clamped[0],
        "merged_after_deploy": clamped[1],
    }
