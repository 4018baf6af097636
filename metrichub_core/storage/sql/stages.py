"""The derived data of the lead-time breakdown (commit to merge, merge to deploy), in either dialect.

The rule (``metrichub_core.dora.reference``): for each change counted in the lead time, the
earliest ``merged_at`` any source reports, clamped into [first commit, deployment finish], splits
its lead time in two. Both backends keep:

- in each ``dora_leads`` row (``LEAD_STAGES_DDL``), of a counted change that has a ``merged_at``,
  the two stages in microseconds and whether the merge was clamped (``CLAMPED_EARLY``/``CLAMPED_LATE``);
  NULL otherwise. They are computed with the lead itself (``stage_columns``), from the same
  lookup of the change's versions;
- ``dora_stage_days`` and ``dora_stage_months``: per (service, environment, stage, day or month)
  the 1 % buckets of each stage, ``''`` as the service of all services, bucket ``-1`` counting
  the clamped merges (the lead rollups' layout, ``rollups.rollup_table``).

The days of a lead row recomputed are recounted (``stage_days_sql``) with its lead days.
(Until migration 11 the stages had a table of their own, ``dora_lead_stages``: every lead
written was then written twice, and a backfill spent a fifth of its time there.)
"""

from __future__ import annotations

from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.rollups import rollup_table

__all__ = [
    "CLAMPED_EARLY",
    "CLAMPED_LATE",
    "EVERY_STAGE",
    "STAGES",
    "LEAD_STAGES_DDL",
    "earliest_merge",
    "stage_columns",
    "stage_days_sql",
    "stage_rebuild_sql",
    "stages_ddl",
]

CLAMPED_EARLY = 1
"""``dora_leads.clamped`` of a change merged before its first commit (commit to merge 0)."""
CLAMPED_LATE = 2
"""``dora_leads.clamped`` of a change merged after its deployment finished (merge to deploy 0)."""
STAGES = (("merge", "merge_us", CLAMPED_EARLY), ("deploy", "deploy_us", CLAMPED_LATE))
"""Each stage: its name in the rollups, its column in ``dora_leads``, the clamp it counts."""
EVERY_STAGE = f"stage IN ({', '.join(repr(stage) for stage, _, _ in STAGES)})"
"""Matches every stage: with it the rollups' key (service, environment, stage, day or month) finds
one service's days without reading every other day of the service."""


def stages_ddl(*, integer: str, real: str, suffix: str = "") -> str:
    """The breakdown's tables in one dialect as migration 9 created them (``integer``/``real``: types
    of counts and seconds). Released: change them by a new migration, never here."""
    keys = "service TEXT NOT NULL, environment TEXT NOT NULL, stage TEXT NOT NULL, {} INTEGER NOT NULL"
    return ";\n".join(
        [
            f"""CREATE TABLE dora_lead_stages (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    change_id TEXT NOT NULL,
    deployed_at {integer} NOT NULL,
    merge_us {integer} NOT NULL,
    deploy_us {integer} NOT NULL,
    clamped INTEGER NOT NULL,
    PRIMARY KEY (service, environment, change_id)
){suffix}""",
            "CREATE INDEX dora_lead_stages_by_time ON dora_lead_stages (service, environment, deployed_at)",
            "CREATE INDEX dora_lead_stages_by_env_time ON dora_lead_stages (environment, deployed_at)",
            rollup_table("dora_stage_days", keys.format("day"), integer=integer, real=real, suffix=suffix),
            "CREATE INDEX dora_stage_days_by_env ON dora_stage_days (environment, day)",
            rollup_table("dora_stage_months", keys.format("month"), integer=integer, real=real, suffix=suffix),
        ]
    )


def earliest_merge(dialect: Dialect, service: str, change_id: str) -> str:
    """The earliest ``merged_at`` any source reports for the change ``(service, change_id)`` (SQL expressions)."""
    return (
        f"(SELECT min(c.merged_at) FROM changes c{dialect.indexed_by('changes_by_service_id')} "
        f"WHERE c.service = {service} AND c.id = {change_id})"
    )


LEAD_STAGES_DDL = """
ALTER TABLE dora_leads ADD COLUMN merge_us {integer};
ALTER TABLE dora_leads ADD COLUMN deploy_us {integer};
ALTER TABLE dora_leads ADD COLUMN clamped INTEGER;
DROP TABLE dora_lead_stages
"""
"""Migration 11 of both backends (format it with the dialect's integer type): the stages move
into the lead rows; the derived tables are then rebuilt. Released: change it by a new migration."""


def stage_columns(merged: str, committed: str, deployed: str) -> str:
    """``dora_leads``' ``merge_us, deploy_us, clamped`` (SQL expressions) of a lead from ``committed``
    to ``deployed`` whose change was first merged at ``merged``: NULL unless the lead is counted
    (a stored change, no negative span) and the change has a ``merged_at``; the merge is clamped
    into [``committed``, ``deployed``]."""
    uncounted = f"{committed} IS NULL OR {deployed} < {committed} OR {merged} IS NULL"
    early, late, lead = f"{merged} < {committed}", f"{merged} > {deployed}", f"{deployed} - {committed}"
    return (
        f"CASE WHEN {uncounted} THEN NULL WHEN {early} THEN 0 WHEN {late} THEN {lead} ELSE {merged} - {committed} END, "
        f"CASE WHEN {uncounted} THEN NULL WHEN {late} THEN 0 WHEN {early} THEN {lead} ELSE {deployed} - {merged} END, "
        f"CASE WHEN {uncounted} THEN NULL WHEN {early} THEN {CLAMPED_EARLY} WHEN {late} THEN {CLAMPED_LATE} ELSE 0 END"
    )


def stage_days_sql(dialect: Dialect, leads: str, day: str) -> list[str]:
    """SELECTs of ``dora_stage_days`` rows of the lead rows of ``leads`` (FROM items, the rows aliased
    ``s``, then a WHERE clause to extend with AND), at day ``day`` (an expression): per stage, its
    buckets and its clamped count (bucket ``-1``)."""
    selects = []
    for stage, column, clamp in STAGES:
        seconds = dialect.seconds(f"s.{column}")
        selects += [
            f"SELECT s.service, s.environment, '{stage}', {day}, {dialect.bucket(seconds)}, count(*), sum({seconds}), "
            f"min({seconds}), max({seconds}) FROM {leads} AND s.{column} IS NOT NULL GROUP BY 1, 2, 4, 5",
            f"SELECT s.service, s.environment, '{stage}', {day}, -1, count(*), 0, 0, 0 FROM {leads} "
            f"AND s.clamped = {clamp} GROUP BY 1, 2, 4",
        ]
    return selects


def stage_rebuild_sql(dialect: Dialect) -> list[str]:
    """Recompute the breakdown's rollups from ``dora_leads`` (after the lead rows)."""
    return [
        *dialect.empty(("dora_stage_days", "dora_stage_months")),
        *(
            f"INSERT INTO dora_stage_days {select}"
            for select in stage_days_sql(dialect, "dora_leads s WHERE true", dialect.day("s.deployed_at"))
        ),
        "INSERT INTO dora_stage_days SELECT '', environment, stage, day, bucket, sum(n), sum(total), min(low), "
        "max(high) FROM dora_stage_days WHERE service <> '' GROUP BY environment, stage, day, bucket",
        f"INSERT INTO dora_stage_months SELECT service, environment, stage, {dialect.month('day')}, bucket, sum(n), "
        "sum(total), min(low), max(high) FROM dora_stage_days GROUP BY 1, 2, 3, 4, 5",
    ]
