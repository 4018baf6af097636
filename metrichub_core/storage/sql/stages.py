"""The derived data of the lead-time breakdown (commit to merge, merge to deploy), in either dialect.

The rule (``metrichub_core.dora.reference``): for each change counted in the lead time, the
earliest ``merged_at`` any source reports, clamped into [first commit, deployment finish], splits
its lead time in two. Both backends keep, beside ``dora_leads``:

- ``dora_lead_stages``: one row per counted change that has a ``merged_at``: the two stages in
  microseconds and whether the merge was clamped (``CLAMPED_EARLY``/``CLAMPED_LATE``);
- ``dora_stage_days`` and ``dora_stage_months``: per (service, environment, stage, day or month)
  the 1 % buckets of each stage, ``''`` as the service of all services, bucket ``-1`` counting
  the clamped merges (the lead rollups' layout, ``rollups.rollup_table``).

A lead row recomputed is restaged (``stage_rows_sql``) and its days recounted (``stage_days_sql``).
"""

from __future__ import annotations

from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.rollups import rollup_table

__all__ = [
    "CLAMPED_EARLY",
    "CLAMPED_LATE",
    "EVERY_STAGE",
    "STAGES",
    "earliest_merge",
    "stage_days_sql",
    "stage_rebuild_sql",
    "stage_rows_sql",
    "stages_ddl",
]

CLAMPED_EARLY = 1
"""``dora_lead_stages.clamped`` of a change merged before its first commit (commit to merge 0)."""
CLAMPED_LATE = 2
"""``dora_lead_stages.clamped`` of a change merged after its deployment finished (merge to deploy 0)."""
STAGES = (("merge", "merge_us", CLAMPED_EARLY), ("deploy", "deploy_us", CLAMPED_LATE))
"""Each stage: its name in the rollups, its column in ``dora_lead_stages``, the clamp it counts."""
EVERY_STAGE = f"stage IN ({', '.join(repr(stage) for stage, _, _ in STAGES)})"
"""Matches every stage: with it the rollups' key (service, environment, stage, day or month) finds
one service's days without reading every other day of the service."""


def stages_ddl(*, integer: str, real: str, suffix: str = "") -> str:
    """The breakdown's tables in one dialect (``integer``/``real``: types of counts and seconds)."""
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


def stage_rows_sql(dialect: Dialect, leads: str) -> str:
    """``dora_lead_stages`` rows of the lead rows of ``leads`` (FROM items, the lead rows aliased ``l``).

    Only counted leads (bucket >= 0: a stored change, no negative span) whose change has a
    ``merged_at``; the merge is the earliest over the change's sources, clamped.
    """
    merged = earliest_merge(dialect, "l.service", "l.change_id")
    early, late = "f.merged < f.committed_at", "f.merged > f.deployed_at"
    return f"""
SELECT f.service, f.environment, f.change_id, f.deployed_at,
       CASE WHEN {early} THEN 0 WHEN {late} THEN f.lead_us ELSE f.merged - f.committed_at END,
       CASE WHEN {late} THEN 0 WHEN {early} THEN f.lead_us ELSE f.deployed_at - f.merged END,
       CASE WHEN {early} THEN {CLAMPED_EARLY} WHEN {late} THEN {CLAMPED_LATE} ELSE 0 END
FROM (SELECT l.service, l.environment, l.change_id, l.deployed_at, l.committed_at, l.lead_us, {merged} AS merged
      FROM {leads} WHERE l.bucket >= 0{dialect.fence}) f
WHERE f.merged IS NOT NULL
"""


def stage_days_sql(dialect: Dialect, stages: str, day: str) -> list[str]:
    """SELECTs of ``dora_stage_days`` rows of the stage rows of ``stages`` (FROM items, the rows aliased
    ``s``, then a WHERE clause to extend with AND), at day ``day`` (an expression): per stage, its
    buckets and its clamped count (bucket ``-1``)."""
    selects = []
    for stage, column, clamp in STAGES:
        seconds = dialect.seconds(f"s.{column}")
        selects += [
            f"SELECT s.service, s.environment, '{stage}', {day}, {dialect.bucket(seconds)}, count(*), sum({seconds}), "
            f"min({seconds}), max({seconds}) FROM {stages} GROUP BY 1, 2, 4, 5",
            f"SELECT s.service, s.environment, '{stage}', {day}, -1, count(*), 0, 0, 0 FROM {stages} "
            f"AND s.clamped = {clamp} GROUP BY 1, 2, 4",
        ]
    return selects


def stage_rebuild_sql(dialect: Dialect) -> list[str]:
    """Recompute the breakdown's tables from ``dora_leads`` and the changes (after the lead rows)."""
    return [
        *dialect.empty(("dora_lead_stages", "dora_stage_days", "dora_stage_months")),
        f"INSERT INTO dora_lead_stages {stage_rows_sql(dialect, 'dora_leads l')}",
        *(
            f"INSERT INTO dora_stage_days {select}"
            for select in stage_days_sql(dialect, "dora_lead_stages s WHERE true", dialect.day("s.deployed_at"))
        ),
        "INSERT INTO dora_stage_days SELECT '', environment, stage, day, bucket, sum(n), sum(total), min(low), "
        "max(high) FROM dora_stage_days WHERE service <> '' GROUP BY environment, stage, day, bucket",
        f"INSERT INTO dora_stage_months SELECT service, environment, stage, {dialect.month('day')}, bucket, sum(n), "
        "sum(total), min(low), max(high) FROM dora_stage_days GROUP BY 1, 2, 3, 4, 5",
    ]
