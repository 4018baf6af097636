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
  in microseconds and its bucket (``metrichub_core.dora._stats.bucket_of``; ``-1`` a
  negative span, ``-2`` a change that is not stored).
- ``dora_lead_days`` / ``dora_lead_months``: per service (``''`` = all services),
  environment and UTC day or month, the lead seconds per bucket: count, sum, min, max.
- ``dora_deploy_days``: per service (``''`` = all), environment and UTC day, the
  successful deployments, the ``failure`` ones and the successful ones labelled rework.
- ``dora_incident_links``: per incident, the deployment it is attributed to (named by
  ``caused_by``, else the last successful one before it) and the one that fixed it.

The rules are those of ``metrichub_core.dora.reference``; the tests compare both.
"""

from __future__ import annotations

import math

from metrichub_core.dora import GAMMA
from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.dora import link_sql
from metrichub_core.storage.sql.rollups import DAY_US, lead_rollups_ddl

__all__ = [
    "DDL",
    "LEAD_DAY_AGGREGATES",
    "LEADS_SELECT",
    "REBUILD",
    "bucket_sql",
    "day_sql",
    "month_sql",
]

_LOG_GAMMA = repr(math.log(GAMMA))


def bucket_sql(seconds: str) -> str:
    """SQL computing ``bucket_of(seconds)`` bit for bit: the same libm ``log`` on the same doubles."""
    return f"(CASE WHEN {seconds} < 1 THEN 0 ELSE 1 + floor(ln({seconds}) / {_LOG_GAMMA}::float8)::int END)"


def day_sql(micros: str) -> str:
    """SQL for the UTC day number of ``micros`` (floor division, as Python's ``//``)."""
    return f"(CASE WHEN {micros} >= 0 THEN {micros} / {DAY_US} ELSE -((-{micros} - 1) / {DAY_US}) - 1 END)::int"


def month_sql(day: str) -> str:
    """SQL for ``year * 12 + month - 1`` of a day number."""
    moment = f"(DATE '1970-01-01' + {day})"
    return f"(extract(year FROM {moment})::int * 12 + extract(month FROM {moment})::int - 1)"


_TYPES = {"integer": "BIGINT", "real": "FLOAT8"}
_SECONDS = "((f.listed_at - c.committed)::float8 / 1000000::float8)"

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

LEADS_SELECT = f"""
SELECT f.service, f.environment, f.change_id, f.source, f.id, f.listed_at, c.committed,
       f.listed_at - c.committed,
       CASE WHEN c.committed IS NULL THEN -2 WHEN f.listed_at < c.committed THEN -1 ELSE {bucket_sql(_SECONDS)} END
FROM {{first}} f
LEFT JOIN LATERAL (
    SELECT min(committed_at) AS committed FROM changes WHERE service = f.service AND id = f.change_id
) c ON true
"""
"""Lead rows from ``{first}``: rows (service, environment, change_id, source, id, listed_at)."""

_FIRST_ALL = """(
    SELECT DISTINCT ON (service, environment, change_id)
           service, environment, change_id, dep_source AS source, dep_id AS id, listed_at
    FROM dora_ships ORDER BY service, environment, change_id, listed_at, dep_source, dep_id
)"""


_LEAD_SECONDS = "lead_us::float8 / 1000000::float8"
LEAD_DAY_AGGREGATES = (
    f"bucket, count(*), coalesce(sum({_LEAD_SECONDS}), 0), coalesce(min({_LEAD_SECONDS}), 0), "
    f"coalesce(max({_LEAD_SECONDS}), 0)"
)
"""Per-bucket count, sum, min and max of lead seconds (the columns of ``dora_lead_days`` from ``bucket``)."""

REBUILD: list[str] = [
    "TRUNCATE dora_ships, dora_leads, dora_lead_days, dora_lead_months, dora_deploy_days, dora_incident_links, "
    "dora_pending",
    "INSERT INTO dora_ships SELECT DISTINCT d.service, j.value, d.environment, d.listed_at, d.source, d.id "
    "FROM deployments d, jsonb_array_elements_text(d.change_ids) j WHERE d.status = 'success'",
    f"INSERT INTO dora_leads {LEADS_SELECT.format(first=_FIRST_ALL)}",
    f"INSERT INTO dora_lead_days SELECT service, environment, {day_sql('deployed_at')}, {LEAD_DAY_AGGREGATES} "
    "FROM dora_leads GROUP BY 1, 2, 3, 4",
    "INSERT INTO dora_lead_days SELECT '', environment, day, bucket, sum(n), sum(total), min(low), max(high) "
    "FROM dora_lead_days WHERE service <> '' GROUP BY environment, day, bucket",
    f"INSERT INTO dora_lead_months SELECT service, environment, {month_sql('day')}, bucket, sum(n), sum(total), "
    "min(low), max(high) FROM dora_lead_days GROUP BY 1, 2, 3, 4",
    f"INSERT INTO dora_deploy_days SELECT service, environment, {day_sql('listed_at')}, "
    "count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE status = 'failure'), "
    "count(*) FILTER (WHERE status = 'success' AND rework) FROM deployments GROUP BY 1, 2, 3",
    "INSERT INTO dora_deploy_days SELECT '', environment, day, sum(deployments), sum(failures), sum(rework_labelled) "
    "FROM dora_deploy_days WHERE service <> '' GROUP BY environment, day",
    f"INSERT INTO dora_incident_links {link_sql(POSTGRES, 'incidents i')}",
]
"""Recompute every derived table from the events (inside a transaction holding ``DORA_LOCK``)."""
