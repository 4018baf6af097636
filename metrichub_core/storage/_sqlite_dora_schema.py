"""Derived DORA data kept by the SQLite backend, and how it is maintained.

Each upsert queues the keys it wrote in ``dora_pending``, in its own transaction;
``refresh`` applies the queue in one transaction before the next DORA query. So the
derived data is never half-written, ingest stays a plain insert, and every event is
derived once, not at every report:

- ``dora_deployment_changes``: each deployment's ``change_ids``, one row per change.
- ``dora_leads``: per (service, environment, change) its first successful shipping
  deployment, the earliest commit time over sources, the lead seconds and their log
  bucket (``-1`` negative span, ``-2`` change not stored).
- ``dora_lead_days`` / ``dora_lead_months``: per service (``''`` = all services),
  environment and UTC day or month, the lead seconds per bucket: count, sum, min,
  max. Quantiles merge exactly across days; see ``metrichub_core.dora._stats``.
- ``dora_deploy_days``: per service (``''`` = all), environment and UTC day, the
  successful deployments, those with status ``failure``, the rework deployments and
  the deployments that caused a failure (under the default attribution).
- ``dora_incident_links``: per incident, the deployment it is attributed to (by
  ``caused_by`` or by time) and the deployment that fixed it (rework).
- ``dora_incident_days``: per service (``''`` = all), environment and UTC day of the
  incidents' start, buckets of the restore and (default) recovery seconds, and the
  counts of open, unattributed and negative incidents (kind ``count``, bucket 1-4).

A write recomputes only what it touched: the leads of the changes it names, the
days and months those leads and deployments fall in, and the links of incidents
whose attribution it can change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from metrichub_core.dora._stats import bucket_of
from metrichub_core.dora.reference import REWORK_LABEL_VALUES

__all__ = [
    "DAY_US",
    "DORA_MIGRATION",
    "DoraWrite",
    "day_of",
    "month_days",
    "month_of",
    "prepare",
    "rebuild",
    "refresh",
]

DAY_US = 86_400_000_000
_Row = tuple[Any, ...]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_REWORK_SQL = "lower(trim(coalesce(json_extract(labels, '$.rework'), ''))) IN ({})".format(
    ", ".join(f"'{value}'" for value in sorted(REWORK_LABEL_VALUES))
)

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
CREATE INDEX dora_leads_by_time ON dora_leads (service, environment, deployed_at);
CREATE INDEX dora_leads_by_env_time ON dora_leads (environment, deployed_at);
CREATE TABLE dora_lead_days (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    day INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    PRIMARY KEY (service, environment, day, bucket)
) WITHOUT ROWID;
CREATE INDEX dora_lead_days_by_env ON dora_lead_days (environment, day);
CREATE TABLE dora_lead_months (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    month INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    PRIMARY KEY (service, environment, month, bucket)
) WITHOUT ROWID;
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
CREATE TABLE dora_incident_days (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    day INTEGER NOT NULL,
    kind TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    PRIMARY KEY (service, environment, day, kind, bucket)
) WITHOUT ROWID;
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
"""
"""Migration 2: the derived tables; ``prepare`` fills them from events already stored."""


def day_of(micros: int) -> int:
    return micros // DAY_US


def month_of(day: int) -> int:
    moment = date.fromordinal(_EPOCH_ORDINAL + day)
    return moment.year * 12 + moment.month - 1


def month_days(month: int) -> tuple[int, int]:
    """``[first, end)`` day numbers of a month number (``year * 12 + month - 1``)."""
    year, index = divmod(month, 12)
    first = date(year, index + 1, 1)
    following = date(year + 1, 1, 1) if index == 11 else date(year, index + 2, 1)
    return first.toordinal() - _EPOCH_ORDINAL, following.toordinal() - _EPOCH_ORDINAL


def _sql_bucket(seconds: float | None) -> int | None:
    return None if seconds is None else bucket_of(seconds)


_LEADS_SQL = """
    INSERT INTO dora_leads
    SELECT f.service, f.environment, f.change_id, f.source, f.id, f.listed_at, f.listed_at / 86400000000,
           f.committed, (f.listed_at - f.committed) / 1e6,
           CASE WHEN f.committed IS NULL THEN -2 WHEN f.listed_at < f.committed THEN -1
                ELSE dora_bucket((f.listed_at - f.committed) / 1e6) END
    FROM (
        SELECT l.service, l.environment, l.change_id, d.source, d.id, d.listed_at,
               (SELECT min(c.committed_at) FROM changes c INDEXED BY changes_by_service_id
                WHERE c.service = l.service AND c.id = l.change_id)
                   AS committed,
               row_number() OVER (PARTITION BY l.service, l.environment, l.change_id
                                  ORDER BY d.listed_at, d.source, d.id) AS rank
        FROM {changes} JOIN deployments d ON d.source = l.dep_source AND d.id = l.dep_id
        WHERE d.status = 'success'
    ) f
    WHERE f.rank = 1
"""
"""First successful shipping deployment and lead seconds of each change of ``{changes}`` (aliased ``l``)."""


def prepare(conn: sqlite3.Connection) -> None:
    """Register the SQL functions the derived data uses; fill it if a migration asked to."""
    conn.create_function("dora_bucket", 1, _sql_bucket, deterministic=True)
    conn.create_function("dora_month", 1, month_of, deterministic=True)
    _recreate_if_outdated(conn)
    row = conn.execute("SELECT value FROM dora_meta WHERE key = 'needs_rebuild'").fetchone()
    if row is not None and row[0] == "1":
        conn.execute("BEGIN IMMEDIATE")
        try:
            rebuild(conn)
            conn.execute("UPDATE dora_meta SET value = '0' WHERE key = 'needs_rebuild'")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _recreate_if_outdated(conn: sqlite3.Connection) -> None:
    """Recreate the derived tables when their shape is not this version's.

    Derived data is rebuilt from the events, so dropping it loses nothing; this covers
    databases made while migration 2 was still being written.
    """
    expected = {
        statement.split("(")[0].split()[-1]: statement.split("(", 1)[1]
        for statement in DORA_MIGRATION.split(";")
        if statement.strip().startswith("CREATE TABLE")
    }
    current = {
        name: sql.split("(", 1)[1]
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name LIKE 'dora%'")
    }
    if all(" ".join(current.get(name, "").split()) == " ".join(shape.split()) for name, shape in expected.items()):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name in current:
            conn.execute(f"DROP TABLE {name}")
        for statement in DORA_MIGRATION.split(";"):
            statement = statement.strip().replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
            if statement:
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every derived table from the events, set-based (inside a transaction)."""
    for table in (
        "dora_deployment_changes", "dora_leads", "dora_lead_days", "dora_lead_months", "dora_deploy_days",
        "dora_incident_links", "dora_incident_days", "dora_pending",
    ):  # fmt: skip
        conn.execute(f"DELETE FROM {table}")
    conn.execute(
        "INSERT OR IGNORE INTO dora_deployment_changes "
        "SELECT d.source, d.id, d.service, d.environment, j.value FROM deployments d, json_each(d.change_ids) j"
    )
    conn.execute(_LEADS_SQL.format(changes="dora_deployment_changes l"))
    conn.execute(
        "INSERT INTO dora_lead_days SELECT service, environment, day, bucket, count(*), "
        "coalesce(sum(seconds), 0), coalesce(min(seconds), 0), coalesce(max(seconds), 0) "
        "FROM dora_leads GROUP BY service, environment, day, bucket"
    )
    conn.execute(
        "INSERT INTO dora_lead_days SELECT '', environment, day, bucket, sum(n), sum(total), min(low), max(high) "
        "FROM dora_lead_days WHERE service != '' GROUP BY environment, day, bucket"
    )
    conn.execute(
        "INSERT INTO dora_lead_months SELECT service, environment, dora_month(day), bucket, sum(n), sum(total), "
        "min(low), max(high) FROM dora_lead_days GROUP BY service, environment, dora_month(day), bucket"
    )
    keys = conn.execute("SELECT source, id FROM incidents").fetchall()
    _relink(conn, [(row[0], row[1]) for row in keys])
    conn.execute(
        f"INSERT INTO dora_deploy_days SELECT service, environment, listed_at / 86400000000, {_DEPLOY_DAY_COLUMNS} "
        "FROM deployments d GROUP BY service, environment, listed_at / 86400000000"
    )
    conn.execute(
        "INSERT INTO dora_deploy_days SELECT '', environment, day, sum(deployments), sum(failures), sum(rework), "
        "sum(failed) FROM dora_deploy_days WHERE service != '' GROUP BY environment, day"
    )
    for kind, where, seconds in _INCIDENT_KINDS:
        conn.execute(
            f"INSERT INTO dora_incident_days SELECT service, environment, started_at / 86400000000, '{kind}', "
            f"dora_bucket({seconds}), count(*), sum({seconds}), min({seconds}), max({seconds}) "
            f"FROM dora_incident_links WHERE {where} GROUP BY 1, 2, 3, 5"
        )
    for code, where in _INCIDENT_COUNTS:
        conn.execute(
            "INSERT INTO dora_incident_days SELECT service, environment, started_at / 86400000000, 'count', "
            f"{code}, count(*), 0, 0, 0 FROM dora_incident_links WHERE {where} GROUP BY 1, 2, 3"
        )
    conn.execute(
        "INSERT INTO dora_incident_days SELECT '', environment, day, kind, bucket, sum(n), sum(total), min(low), "
        "max(high) FROM dora_incident_days WHERE service != '' GROUP BY environment, day, kind, bucket"
    )


_CAUSED_FAILURE = (
    "EXISTS (SELECT 1 FROM dora_incident_links l WHERE l.cause_source = d.source AND l.cause_id = d.id "
    "AND l.environment = d.environment)"
)
_FIXED = "EXISTS (SELECT 1 FROM dora_incident_links l WHERE l.fix_source = d.source AND l.fix_id = d.id)"
_DEPLOY_DAY_COLUMNS = (
    f"sum(status = 'success'), sum(status = 'failure'), sum(status = 'success' AND ({_REWORK_SQL} OR {_FIXED})), "
    f"sum(status = 'success' AND {_CAUSED_FAILURE})"
)
_RESOLVED = "resolved_at IS NOT NULL AND resolved_at >= started_at"
_INCIDENT_KINDS = (
    ("restore", _RESOLVED, "(resolved_at - started_at) / 1e6"),
    ("recovery", f"{_RESOLVED} AND cause_at IS NOT NULL", "(resolved_at - started_at) / 1e6"),
)
"""Duration buckets per incident day: (kind, which links, seconds)."""
_INCIDENT_COUNTS = (
    (1, "resolved_at IS NULL"),
    (2, "resolved_at IS NULL AND cause_at IS NOT NULL"),
    (3, "related = 1 AND cause_at IS NULL"),
    (4, "resolved_at < started_at"),
)
"""Counts per incident day (kind ``count``): open, open attributed, unattributed, negative."""


class DoraWrite:
    """Queues what one upsert touches, in the upsert's transaction (``before`` it, then ``after`` it).

    The queue (``dora_pending``) is applied by ``refresh`` before the next DORA query,
    so ingest stays a plain insert and the derived data is computed once per event.
    """

    def __init__(self, deployments: Sequence[_Row], changes: Sequence[_Row], incidents: Sequence[_Row]) -> None:
        self.deployments, self.changes, self.incidents = deployments, changes, incidents

    def before(self, conn: sqlite3.Connection) -> None:
        """Queue the deployments with where they were before (service, environment, time), if stored."""
        conn.executemany(
            "INSERT INTO dora_pending SELECT 'deployment', ?1, ?2, d.service, d.environment, d.listed_at "
            "FROM (SELECT 1) LEFT JOIN deployments d ON d.source = ?1 AND d.id = ?2",
            [(row[0], row[1]) for row in self.deployments],
        )

    def after(self, conn: sqlite3.Connection) -> None:
        pending = [("change", row[0], row[1]) for row in self.changes]
        pending += [("incident", row[0], row[1]) for row in self.incidents]
        conn.executemany("INSERT INTO dora_pending VALUES (?, ?, ?, NULL, NULL, NULL)", pending)


REBUILD_AT = 200_000
"""A queue longer than this is applied by rebuilding everything, set-based."""


def refresh(conn: sqlite3.Connection) -> int:
    """Apply the pending queue in one write transaction; return how many entries it held."""
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM dora_pending)").fetchone()[0]:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        top, count = conn.execute("SELECT max(rowid), count(*) FROM dora_pending").fetchone()
        if count > REBUILD_AT:
            rebuild(conn)
        elif count:
            _apply(conn, top)
            conn.execute("DELETE FROM dora_pending WHERE rowid <= ?", (top,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(count)


def _apply(conn: sqlite3.Connection, top: int) -> None:
    """Recompute what the queued events (up to rowid ``top``) can have changed."""
    lead_keys: set[tuple[str, str, str]] = set()
    deploy_days: set[tuple[str, str, int]] = set()
    relink_from: dict[tuple[str, str], int] = {}
    named: set[tuple[str, str]] = set()

    def queued(kind: str) -> str:
        return f"(SELECT DISTINCT source, id FROM dora_pending WHERE kind = '{kind}' AND rowid <= {int(top)}) p"

    for service, environment, listed_at in conn.execute(
        "SELECT DISTINCT old_service, old_environment, old_listed_at FROM dora_pending "
        "WHERE kind = 'deployment' AND old_service IS NOT NULL AND rowid <= ?",
        (top,),
    ):
        deploy_days.add((service, environment, day_of(listed_at)))
        _earliest(relink_from, (service, environment), listed_at)
    # The changes the queued deployments listed before: their leads may move to another deployment.
    old_links = conn.execute(
        f"SELECT l.dep_source, l.dep_id, l.service, l.environment, l.change_id FROM {queued('deployment')} "
        "CROSS JOIN dora_deployment_changes l ON l.dep_source = p.source AND l.dep_id = p.id"
    ).fetchall()
    lead_keys.update((row[2], row[3], row[4]) for row in old_links)
    conn.executemany(
        "DELETE FROM dora_deployment_changes WHERE dep_source = ? AND dep_id = ?",
        {(row[0], row[1]) for row in old_links},
    )
    links: list[tuple[str, str, str, str, str]] = []
    for source, id_, service, environment, listed_at, change_ids in conn.execute(
        f"SELECT d.source, d.id, d.service, d.environment, d.listed_at, d.change_ids FROM {queued('deployment')} "
        "CROSS JOIN deployments d ON d.source = p.source AND d.id = p.id"
    ):
        for change_id in dict.fromkeys(_json_list(change_ids)):
            links.append((source, id_, service, environment, change_id))
            lead_keys.add((service, environment, change_id))
        deploy_days.add((service, environment, day_of(listed_at)))
        _earliest(relink_from, (service, environment), listed_at)
        named.add((service, id_))
    conn.executemany("INSERT OR IGNORE INTO dora_deployment_changes VALUES (?, ?, ?, ?, ?)", links)
    # A change (re)stored: the leads of every environment that shipped it.
    lead_keys.update(
        (row[0], row[1], row[2])
        for row in conn.execute(
            f"SELECT DISTINCT l.service, l.environment, l.change_id FROM {queued('change')} "
            "CROSS JOIN changes c ON c.source = p.source AND c.id = p.id "
            "CROSS JOIN dora_deployment_changes l ON l.service = c.service AND l.change_id = c.id"
        )
    )
    # Old links' deployments are named too (a caused_by may name a deployment that moved).
    named.update((row[2], row[1]) for row in old_links)

    lead_days = _relead(conn, lead_keys)
    _recount_lead_days(conn, lead_days)

    incidents = {
        (row[0], row[1])
        for row in conn.execute(
            "SELECT DISTINCT source, id FROM dora_pending WHERE kind = 'incident' AND rowid <= ?", (top,)
        )
    }
    for (service, environment), since in relink_from.items():
        incidents.update(
            (row[0], row[1])
            for row in conn.execute(
                "SELECT source, id FROM incidents WHERE service = ? AND environment = ? "
                "AND (started_at > ? OR resolved_at >= ?)",
                (service, environment, since, since),
            )
        )
    for service, id_ in named:
        incidents.update(
            (row[0], row[1])
            for row in conn.execute(
                "SELECT source, id FROM incidents WHERE service = ? AND caused_by = ?", (service, id_)
            )
        )
    linked_days, incident_days = _relink(conn, sorted(incidents))
    _recount_deploy_days(conn, deploy_days | linked_days)
    _recount_incident_days(conn, incident_days)


def _earliest(earliest: dict[tuple[str, str], int], key: tuple[str, str], moment: int) -> None:
    if key not in earliest or moment < earliest[key]:
        earliest[key] = moment


def _json_list(text: str) -> list[str]:
    import json

    value = json.loads(text)
    return [str(item) for item in value]


_TOUCHED = (
    "CREATE TEMP TABLE IF NOT EXISTS dora_touched (service TEXT, environment TEXT, change_id TEXT, "
    "PRIMARY KEY (service, environment, change_id)) WITHOUT ROWID"
)
_TOUCHED_LEADS = (
    "SELECT DISTINCT l.service, l.environment, l.day FROM temp.dora_touched t CROSS JOIN dora_leads l "
    "ON l.service = t.service AND l.environment = t.environment AND l.change_id = t.change_id"
)
# CROSS JOIN keeps SQLite's loop order: the few touched keys outside, the big tables by index inside.


def _relead(conn: sqlite3.Connection, keys: Iterable[tuple[str, str, str]]) -> set[tuple[str, str, int]]:
    """Recompute the lead rows of ``keys`` set-based; return the (service, environment, day)s that changed."""
    conn.execute(_TOUCHED)
    conn.execute("DELETE FROM temp.dora_touched")
    conn.executemany("INSERT OR IGNORE INTO temp.dora_touched VALUES (?, ?, ?)", keys)
    dirty: set[tuple[str, str, int]] = {(row[0], row[1], row[2]) for row in conn.execute(_TOUCHED_LEADS)}
    conn.executemany(
        "DELETE FROM dora_leads WHERE service = ? AND environment = ? AND change_id = ?",
        conn.execute("SELECT service, environment, change_id FROM temp.dora_touched").fetchall(),
    )
    conn.execute(
        _LEADS_SQL.format(
            changes="temp.dora_touched t CROSS JOIN dora_deployment_changes l "
            "ON l.service = t.service AND l.environment = t.environment AND l.change_id = t.change_id"
        )
    )
    dirty |= {(row[0], row[1], row[2]) for row in conn.execute(_TOUCHED_LEADS)}
    return dirty


def _recount_deploy_days(conn: sqlite3.Connection, days: set[tuple[str, str, int]]) -> None:
    for service, environment, day in days:
        conn.execute(
            "DELETE FROM dora_deploy_days WHERE service = ? AND environment = ? AND day = ?",
            (service, environment, day),
        )
        conn.execute(
            f"INSERT INTO dora_deploy_days SELECT service, environment, ?, {_DEPLOY_DAY_COLUMNS} "
            "FROM deployments d WHERE service = ? AND environment = ? AND listed_at >= ? AND listed_at < ? "
            "GROUP BY service, environment",
            (day, service, environment, day * DAY_US, (day + 1) * DAY_US),
        )
    for environment, day in {(environment, day) for _, environment, day in days}:
        conn.execute(
            "DELETE FROM dora_deploy_days WHERE service = '' AND environment = ? AND day = ?", (environment, day)
        )
        conn.execute(
            "INSERT INTO dora_deploy_days SELECT '', environment, day, sum(deployments), sum(failures), "
            "sum(rework), sum(failed) FROM dora_deploy_days WHERE service != '' AND environment = ? AND day = ? "
            "GROUP BY environment, day",
            (environment, day),
        )


_LINKS_BY_SERVICE = "dora_incident_links INDEXED BY dora_links_by_service"
"""Else the planner may pick the cause index for ``cause_at IS NULL`` and scan every link."""


def _recount_incident_days(conn: sqlite3.Connection, days: set[tuple[str, str, int]]) -> None:
    for service, environment, day in days:
        key = (service, environment, day)
        conn.execute("DELETE FROM dora_incident_days WHERE service = ? AND environment = ? AND day = ?", key)
        where = "service = ? AND environment = ? AND started_at >= ? AND started_at < ?"
        params = (service, environment, day * DAY_US, (day + 1) * DAY_US)
        for kind, which, seconds in _INCIDENT_KINDS:
            conn.execute(
                f"INSERT INTO dora_incident_days SELECT service, environment, ?, '{kind}', dora_bucket({seconds}), "
                f"count(*), sum({seconds}), min({seconds}), max({seconds}) FROM {_LINKS_BY_SERVICE} "
                f"WHERE {where} AND {which} GROUP BY 1, 2, 3, 5",
                (day, *params),
            )
        for code, which in _INCIDENT_COUNTS:
            conn.execute(
                f"INSERT INTO dora_incident_days SELECT service, environment, ?, 'count', {code}, count(*), 0, 0, 0 "
                f"FROM {_LINKS_BY_SERVICE} WHERE {where} AND {which} GROUP BY 1, 2, 3",
                (day, *params),
            )
    for environment, day in {(environment, day) for _, environment, day in days}:
        conn.execute(
            "DELETE FROM dora_incident_days WHERE service = '' AND environment = ? AND day = ?", (environment, day)
        )
        conn.execute(
            "INSERT INTO dora_incident_days SELECT '', environment, day, kind, bucket, sum(n), sum(total), min(low), "
            "max(high) FROM dora_incident_days WHERE service != '' AND environment = ? AND day = ? "
            "GROUP BY kind, bucket",
            (environment, day),
        )


def _recount_lead_days(conn: sqlite3.Connection, days: set[tuple[str, str, int]]) -> None:
    scopes = set(days) | {("", environment, day) for _, environment, day in days}
    for service, environment, day in sorted(scopes, key=lambda key: key[0] == ""):  # services first, then ''
        conn.execute(
            "DELETE FROM dora_lead_days WHERE service = ? AND environment = ? AND day = ?", (service, environment, day)
        )
        if service:
            conn.execute(
                "INSERT INTO dora_lead_days SELECT service, environment, day, bucket, count(*), "
                "coalesce(sum(seconds), 0), coalesce(min(seconds), 0), coalesce(max(seconds), 0) FROM dora_leads "
                "WHERE service = ? AND environment = ? AND deployed_at >= ? AND deployed_at < ? GROUP BY bucket",
                (service, environment, day * DAY_US, (day + 1) * DAY_US),
            )
        else:
            conn.execute(
                "INSERT INTO dora_lead_days SELECT '', environment, day, bucket, sum(n), sum(total), min(low), "
                "max(high) FROM dora_lead_days WHERE service != '' AND environment = ? AND day = ? GROUP BY bucket",
                (environment, day),
            )
    for service, environment, month in {(s, e, month_of(d)) for s, e, d in scopes}:
        first, end = month_days(month)
        conn.execute(
            "DELETE FROM dora_lead_months WHERE service = ? AND environment = ? AND month = ?",
            (service, environment, month),
        )
        conn.execute(
            "INSERT INTO dora_lead_months SELECT service, environment, ?, bucket, sum(n), sum(total), min(low), "
            "max(high) FROM dora_lead_days WHERE service = ? AND environment = ? AND day >= ? AND day < ? "
            "GROUP BY bucket",
            (month, service, environment, first, end),
        )


def _relink(
    conn: sqlite3.Connection, incidents: Sequence[tuple[str, str]]
) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]]]:
    """Recompute the attribution and fix deployment of ``incidents`` (same rules as the reference).

    Returns the deployment days whose failed or rework counts may have changed, and
    the incident days whose rollups must be recounted.
    """
    rows = []
    deploy_days: set[tuple[str, str, int]] = set()
    incident_days: set[tuple[str, str, int]] = set()
    for source, id_ in incidents:
        old = conn.execute(
            "SELECT service, environment, started_at, cause_env, cause_at, fix_at FROM dora_incident_links "
            "WHERE inc_source = ? AND inc_id = ?",
            (source, id_),
        ).fetchone()
        if old is not None:
            service, environment, started, cause_env, cause_at, fix_at = tuple(old)
            incident_days.add((service, environment, day_of(started)))
            if cause_at is not None:
                deploy_days.add((service, cause_env, day_of(cause_at)))
            if fix_at is not None:
                deploy_days.add((service, environment, day_of(fix_at)))
        incident = conn.execute(
            "SELECT service, environment, started_at, resolved_at, caused_by, deployment_related FROM incidents "
            "WHERE source = ? AND id = ?",
            (source, id_),
        ).fetchone()
        if incident is None:
            continue
        service, environment, started, resolved, caused_by, related = tuple(incident)
        incident_days.add((service, environment, day_of(started)))
        cause: tuple[Any, ...] | None = None
        by_time = 0
        if related:
            if caused_by:
                cause = conn.execute(
                    "SELECT source, id, environment, status, listed_at FROM deployments WHERE service = ? AND id = ? "
                    "ORDER BY status = 'success' DESC, listed_at DESC, source DESC, id DESC LIMIT 1",
                    (service, caused_by),
                ).fetchone()
            if cause is None:
                cause = conn.execute(
                    "SELECT source, id, environment, status, listed_at FROM deployments "
                    "WHERE service = ? AND environment = ? AND listed_at < ? AND status = 'success' "
                    "ORDER BY listed_at DESC, source DESC, id DESC LIMIT 1",
                    (service, environment, started),
                ).fetchone()
                by_time = int(cause is not None)
        fix: tuple[Any, ...] | None = None
        if resolved is not None:
            fix = conn.execute(
                f"SELECT source, id, listed_at, {_REWORK_SQL} FROM deployments "
                "WHERE service = ? AND environment = ? AND listed_at > ? AND status = 'success' "
                "ORDER BY listed_at, source, id LIMIT 1",
                (service, environment, started),
            ).fetchone()
            if fix is not None and fix[2] > resolved:
                fix = None
        if cause is not None:
            deploy_days.add((service, cause[2], day_of(cause[4])))
        if fix is not None:
            deploy_days.add((service, environment, day_of(fix[2])))
        rows.append((
            source, id_, service, environment, started, resolved, int(bool(related)),
            *(tuple(cause) if cause is not None else (None,) * 5), by_time,
            *(tuple(fix[:3]) if fix is not None else (None,) * 3), int(bool(fix[3])) if fix is not None else 0,
        ))  # fmt: skip
    conn.executemany("INSERT OR REPLACE INTO dora_incident_links VALUES (" + ", ".join("?" * 17) + ")", rows)
    return deploy_days, incident_days
