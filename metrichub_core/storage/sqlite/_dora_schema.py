"""The SQLite backend's history of derived DORA tables, and its SQL helpers.

The derived tables are those of both backends (docs/storage.md; their SQL is the core's
kit, ``metrichub_core.storage.sql.dora``). ``DORA_MIGRATION`` is migration 2 as released:
migration 4 replaced its ``dora_deployment_changes`` and ``dora_leads``. Each upsert queues
the keys it wrote in ``dora_pending`` (with the stored versions' service, environment and
time) and ``_dora_derive.derive_queued`` applies that queue in the same transaction.
"""

from __future__ import annotations

from metrichub_core.storage.sql.rollups import lead_rollups_ddl, rollup_table

__all__ = ["DORA_MIGRATION", "LINKS_BY_SERVICE"]


_TYPES = {"integer": "INTEGER", "real": "REAL", "suffix": " WITHOUT ROWID"}

DORA_MIGRATION = """
CREATE TABLE dora_deployment_changes (
    dep_source TEXT NOT NULL,
    dep_id TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    change_id TEXT NOT NULL,
    PRIMARY KEY (dep_source, dep_id, change_id)
) WITHOUT ROWID;
CREATE INDEX dora_deployment_changes_by_change ON dora_deployment_changes (service, change_id, environment);
CREATE TABLE dora_leads (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    change_id TEXT NOT NULL,
    dep_source TEXT NOT NULL,
    dep_id TEXT NOT NULL,
    deployed_at INTEGER NOT NULL,
    day INTEGER NOT NULL,
    committed_at INTEGER,
    seconds REAL,
    bucket INTEGER NOT NULL,
    PRIMARY KEY (service, environment, change_id)
) WITHOUT ROWID;
{lead_rollups};
CREATE TABLE dora_deploy_days (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    day INTEGER NOT NULL,
    deployments INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    rework INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    PRIMARY KEY (service, environment, day)
) WITHOUT ROWID;
CREATE INDEX dora_deploy_days_by_env ON dora_deploy_days (environment, day);
CREATE TABLE dora_incident_links (
    inc_source TEXT NOT NULL,
    inc_id TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    resolved_at INTEGER,
    related INTEGER NOT NULL,
    cause_source TEXT,
    cause_id TEXT,
    cause_env TEXT,
    cause_status TEXT,
    cause_at INTEGER,
    by_time INTEGER NOT NULL,
    fix_source TEXT,
    fix_id TEXT,
    fix_at INTEGER,
    fix_labelled INTEGER NOT NULL,
    PRIMARY KEY (inc_source, inc_id)
) WITHOUT ROWID;
CREATE INDEX dora_links_by_start ON dora_incident_links (environment, started_at);
CREATE INDEX dora_links_by_cause ON dora_incident_links (environment, cause_at);
CREATE INDEX dora_links_by_fix ON dora_incident_links (environment, fix_at);
CREATE INDEX dora_links_by_service ON dora_incident_links (service, environment, started_at);
CREATE INDEX dora_links_by_cause_key ON dora_incident_links (cause_source, cause_id);
CREATE INDEX dora_links_by_fix_key ON dora_incident_links (fix_source, fix_id);
{dora_incident_days};
CREATE INDEX dora_incident_days_by_env ON dora_incident_days (environment, day);
CREATE INDEX deployments_by_service_id ON deployments (service, id);
CREATE INDEX changes_by_service_id ON changes (service, id);
CREATE INDEX incidents_by_cause ON incidents (service, caused_by);
CREATE TABLE dora_pending (
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    old_service TEXT,
    old_environment TEXT,
    old_listed_at INTEGER
);
CREATE TABLE dora_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO dora_meta VALUES ('needs_rebuild', '1')
""".format(
    lead_rollups=lead_rollups_ddl(**_TYPES),
    dora_incident_days=rollup_table(
        "dora_incident_days",
        "service TEXT NOT NULL, environment TEXT NOT NULL, day INTEGER NOT NULL, kind TEXT NOT NULL",
        **_TYPES,
    ),
)
"""Migration 2: the derived tables; ``_dora_derive.prepare`` fills them from events already stored."""


LINKS_BY_SERVICE = "dora_incident_links l INDEXED BY dora_links_by_service"
"""Else the planner may pick the cause index for ``cause_at IS NULL`` and scan every link."""
