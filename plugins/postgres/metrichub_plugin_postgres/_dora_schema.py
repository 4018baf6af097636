"""Derived DORA data: what it holds, and the SQL that recomputes it.

Writers queue what they touch (``dora_pending``) in the transaction of their events;
the next DORA query applies the queue (``_dora_write.refresh``) in one transaction, so
derived data is never half-written and each event is derived once, not per batch. Both
take one transaction-level advisory lock (``DORA_LOCK``), so derived rows are always
recomputed from a state that includes every committed write. A query that finds the
queue empty in its snapshot reads without waiting.

- ``dora_ships``: per successful deployment, one row per change it lists, keyed so that
  the first one to ship a change (by time, source, id) is one index probe away.
- ``dora_leads``: per (service, environment, change) its first successful shipping
  deployment (ordered by time, source, id), the earliest commit over sources, the lead
  in microseconds and its bucket (``metrichub_core.dora.bucket_of``; ``-1`` a
  negative span, ``-2`` a change that is not stored).
- ``dora_lead_days`` / ``dora_lead_months``: per service (``''`` = all services),
  environment and UTC day or month, the lead seconds per bucket: count, sum, min, max.
- ``dora_deploy_days``: per service (``''`` = all), environment and UTC day, the
  successful deployments, the ``failure`` ones and the successful ones labelled rework.
- ``dora_incident_links``: per incident, the deployment it is attributed to (named by
  ``caused_by``, else the last successful one before it) and the one that fixed it.

The rules are those of ``metrichub_core.dora.reference``, written as SQL once for both
backends in ``metrichub_core.storage.sql.dora``; the tests compare both.
"""

from __future__ import annotations

from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.dora import rebuild_sql
from metrichub_core.storage.sql.rollups import lead_rollups_ddl

__all__ = ["DDL", "REBUILD"]

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

REBUILD: list[str] = [
    *rebuild_sql(POSTGRES),
    "TRUNCATE dora_deploy_days, dora_pending",
    f"INSERT INTO dora_deploy_days SELECT service, environment, {POSTGRES.day('listed_at')}, "
    "count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE status = 'failure'), "
    "count(*) FILTER (WHERE status = 'success' AND rework) FROM deployments GROUP BY 1, 2, 3",
    "INSERT INTO dora_deploy_days SELECT '', environment, day, sum(deployments), sum(failures), sum(rework_labelled) "
    "FROM dora_deploy_days WHERE service <> '' GROUP BY environment, day",
]
"""Recompute every derived table from the events (inside a transaction holding ``DORA_LOCK``)."""
