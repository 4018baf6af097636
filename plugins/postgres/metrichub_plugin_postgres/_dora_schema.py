"""Derived DORA data: what it holds, and the SQL that recomputes it.

Writers derive what their batch changes in the transaction of its events
(``_dora_write.DoraWrite``), so derived data is never half-written and every committed
state is derived. They take one transaction-level advisory lock (``DORA_LOCK``), so
derived rows are always recomputed from a state that includes every committed write. A
query reads its snapshot without waiting (a queue, ``dora_pending``, left by a release that
derived lazily is applied first, under the same lock).

The tables, the same on SQLite, are described in the core's docs/storage.md: ``dora_ships``,
``dora_leads``, ``dora_lead_days``, ``dora_lead_months``, ``dora_deploy_days``,
``dora_incident_links`` and ``dora_incident_days``. Migration 1 created the first six (with
``dora_deploy_days.rework_labelled``), migration 4 (``SHARED_LAYOUT``) brought the day
rollups to SQLite's shape, migration 5 (``LINKS_NAMED``) added the links' named columns, and
migration 6 (``REBUILT``) moved buckets to start at a millisecond, migration 9 (``STAGES``)
added the lead-time breakdown's rollups, and migration 11 (``LEAD_STAGES``) moved its stages
into the lead rows and rebuilt every derived table.

The rules are those of ``metrichub_core.dora.reference``, written as SQL once for both
backends in ``metrichub_core.storage.sql.dora``; the tests compare both.
"""

from __future__ import annotations

from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.dora import LINKS_NAMED_DDL, rebuild_sql
from metrichub_core.storage.sql.rollups import lead_rollups_ddl, rollup_table
from metrichub_core.storage.sql.stages import LEAD_STAGES_DDL, stage_rebuild_sql, stages_ddl

__all__ = [
    "CODE_POINT_KEYS",
    "DDL",
    "LEAD_STAGES",
    "LINKS_NAMED",
    "REBUILD",
    "REBUILT",
    "SHARED_LAYOUT",
    "STAGES",
    "TEXT_KEYS",
]

_TYPES = {"integer": "BIGINT", "real": "FLOAT8"}

DDL = f"""
CREATE TABLE dora_ships (
    service TEXT NOT NULL,
    change_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    listed_at BIGINT NOT NULL,
    dep_source TEXT COLLATE "C" NOT NULL,
    dep_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (service, change_id, environment, listed_at, dep_source, dep_id)
);
CREATE TABLE dora_leads (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    change_id TEXT NOT NULL,
    dep_source TEXT COLLATE "C" NOT NULL,
    dep_id TEXT COLLATE "C" NOT NULL,
    deployed_at BIGINT NOT NULL,
    committed_at BIGINT,
    lead_us BIGINT,
    bucket INTEGER NOT NULL,
    PRIMARY KEY (service, environment, change_id)
);
{lead_rollups_ddl(**_TYPES)};
CREATE TABLE dora_deploy_days (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    day INTEGER NOT NULL,
    deployments BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    rework_labelled BIGINT NOT NULL,
    PRIMARY KEY (service, environment, day)
);
CREATE INDEX dora_deploy_days_by_env ON dora_deploy_days (environment, day);
CREATE TABLE dora_incident_links (
    inc_source TEXT COLLATE "C" NOT NULL,
    inc_id TEXT COLLATE "C" NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    resolved_at BIGINT,
    related BOOLEAN NOT NULL,
    cause_source TEXT COLLATE "C",
    cause_id TEXT COLLATE "C",
    cause_env TEXT,
    cause_status TEXT,
    cause_at BIGINT,
    by_time BOOLEAN NOT NULL,
    fix_source TEXT COLLATE "C",
    fix_id TEXT COLLATE "C",
    fix_at BIGINT,
    fix_labelled BOOLEAN NOT NULL,
    PRIMARY KEY (inc_source, inc_id)
);
CREATE INDEX dora_links_by_start ON dora_incident_links (environment, started_at);
CREATE INDEX dora_links_by_cause ON dora_incident_links (environment, cause_at);
CREATE INDEX dora_links_by_fix ON dora_incident_links (environment, fix_at);
CREATE INDEX dora_links_by_service_start ON dora_incident_links (service, environment, started_at);
CREATE INDEX dora_links_by_service_cause ON dora_incident_links (service, environment, cause_at);
CREATE INDEX dora_links_by_service_fix ON dora_incident_links (service, environment, fix_at);
CREATE INDEX deployments_by_service_id ON deployments (service, id);
CREATE INDEX changes_by_service_id ON changes (service, id);
CREATE INDEX incidents_by_cause ON incidents (service, caused_by);
"""
"""Migration 1's derived tables (the rollups' shape is shared with SQLite: ``rollup_table``)."""

REBUILD: list[str] = [*rebuild_sql(POSTGRES), *stage_rebuild_sql(POSTGRES)]
"""Recompute every derived table from the events (inside a transaction holding ``DORA_LOCK``)."""

SHARED_LAYOUT = ";\n".join(
    [
        "ALTER TABLE dora_deploy_days RENAME COLUMN rework_labelled TO rework",
        "ALTER TABLE dora_deploy_days ADD COLUMN failed BIGINT NOT NULL DEFAULT 0",
        rollup_table(
            "dora_incident_days",
            "service TEXT NOT NULL, environment TEXT NOT NULL, day INTEGER NOT NULL, kind TEXT NOT NULL",
            **_TYPES,
        ),
        "CREATE INDEX dora_incident_days_by_env ON dora_incident_days (environment, day)",
        "CREATE INDEX dora_links_by_cause_key ON dora_incident_links (cause_source, cause_id)",
        "CREATE INDEX dora_links_by_fix_key ON dora_incident_links (fix_source, fix_id)",
    ]
)
"""Migration 4: SQLite's day rollups (rework with the fixes, failed deployments, incident days), so
that both backends keep one layout and answer with the same queries. The rebuild is today's SQL,
which needs the later steps' columns, so only the last step that rebuilds (``LEAD_STAGES``) does."""

LINKS_NAMED = LINKS_NAMED_DDL.format(boolean="BOOLEAN", false="false", collate=' COLLATE "C"', integer="BIGINT")
"""Migration 5: the links keep whether an incident names a deployment and the failed run it names
(what ``caused_by`` may name depends on the options)."""

REBUILT = "DELETE FROM dora_pending"
"""Migration 6: duration buckets start at a millisecond (``metrichub_core.dora.BUCKET_FLOOR_SECONDS``).
It rebuilt every derived table; today's rebuild needs migration 11's columns, so that step
(``LEAD_STAGES``) rebuilds instead, and this one only drops a queue the rebuild makes moot."""

STAGES = stages_ddl(**_TYPES)
"""Migration 9: the lead-time breakdown's tables (``metrichub_core.storage.sql.stages``). It filled
them from the lead rows; migration 11 (``LEAD_STAGES``) rebuilds them now."""

LEAD_STAGES = ";\n".join([LEAD_STAGES_DDL.format(integer="BIGINT"), *REBUILD])
"""Migration 11: the breakdown moves into the lead rows (a backfill writes them once, not twice);
every derived table is rebuilt (the last migration that rebuilds: today's SQL needs its columns)."""

TEXT_KEYS = {
    "deployments": ("service", "environment"),
    "changes": ("service",),
    "incidents": ("service", "environment", "caused_by"),
    "dora_ships": ("service", "change_id", "environment"),
    "dora_leads": ("service", "environment", "change_id"),
    "dora_lead_days": ("service", "environment"),
    "dora_lead_months": ("service", "environment"),
    "dora_deploy_days": ("service", "environment"),
    "dora_incident_links": ("service", "environment", "cause_env"),
    "dora_incident_days": ("service", "environment", "kind"),
    "dora_stage_days": ("service", "environment", "stage"),
    "dora_stage_months": ("service", "environment", "stage"),
}
"""The text columns migration 12 gives the "C" collation (``CODE_POINT_KEYS``)."""
CODE_POINT_KEYS = ";\n".join(
    f"ALTER TABLE {table} " + ", ".join(f'ALTER COLUMN {column} TYPE TEXT COLLATE "C"' for column in columns)
    for table, columns in TEXT_KEYS.items()
)
"""Migration 12: the text columns the derivation's indexes and joins compare (services, environments,
change ids, stage and kind names) compare by code point, as SQLite and Python order them, instead of by
the database's default collation (a linguistic one, ICU or glibc, costs several times more per
comparison, and a derivation makes dozens per row it writes). Equality is the same (a deterministic
collation equals byte for byte); the indexes are rebuilt, the rows are not rewritten."""
