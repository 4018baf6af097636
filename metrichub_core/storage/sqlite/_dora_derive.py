"""How the SQLite backend derives its DORA tables (see ``_dora_schema``).

``DoraWrite`` queues the keys an upsert writes and recomputes, set-based, only what they
can have changed, both in the upsert's transaction; ``refresh`` applies a queue
left by an older MetricHub (which derived before the next query instead); ``rebuild``
recomputes everything; ``prepare`` readies a connection on open.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable

from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.dora import (
    DEPLOY_DAY_COLUMNS,
    incident_days_sql,
    lead_day_aggregates,
    leads_sql,
    link_sql,
    rebuild_sql,
    ships_sql,
)
from metrichub_core.storage.sql.events import Rows
from metrichub_core.storage.sql.rollups import DAY_US, day_of, month_days, month_of
from metrichub_core.storage.sql.stages import EVERY_STAGE, stage_days_sql, stage_rebuild_sql
from metrichub_core.storage.sqlite._dora_schema import LINKS_BY_SERVICE
from metrichub_core.storage.sqlite._schema import transaction

__all__ = ["REBUILD_AT", "DoraWrite", "functions", "prepare", "rebuild", "refresh"]


def functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions of the kit's SQLite dialect: ``dora_month``, and ``ln`` where SQLite
    was built without its math functions."""
    conn.create_function("dora_month", 1, month_of, deterministic=True)
    try:
        conn.execute("SELECT ln(1)")
    except sqlite3.OperationalError:
        conn.create_function("ln", 1, math.log, deterministic=True)


def prepare(conn: sqlite3.Connection) -> None:
    """Register the SQL functions the derived data uses; fill it if a migration asked to."""
    functions(conn)
    with transaction(conn):  # read inside the write transaction: another process may have rebuilt
        row = conn.execute("SELECT value FROM dora_meta WHERE key = 'needs_rebuild'").fetchone()
        if row is not None and row[0] == "1":
            rebuild(conn)
            conn.execute("UPDATE dora_meta SET value = '0' WHERE key = 'needs_rebuild'")


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every derived table from the events, set-based (inside a transaction).

    The event tables are analysed first: without statistics SQLite's planner probes the
    incident links through the wrong index (72 s instead of a fraction of a second for the
    links of 20,000 incidents beside 1.2 million changes; the whole rebuild 95 s, now 24 s).
    """
    for table in ("deployments", "changes", "incidents"):
        conn.execute(f"ANALYZE {table}")
    for statement in [*rebuild_sql(SQLITE), *stage_rebuild_sql(SQLITE)]:
        conn.execute(statement)


class DoraWrite:
    """Derives what one upsert changes, in the upsert's transaction: each part of the batch is
    ``queue``d before it is written (its keys, with where their stored versions were), then
    ``derive`` applies the queue.

    The batch's queue is a temporary table (``temp.dora_batch``, the columns of ``dora_pending``):
    it never reaches the WAL. The derivation is amortised over the batches, set-based on each
    batch's keys.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        _temp(conn, "dora_batch")

    def queue(self, rows: Rows) -> None:
        """Queue a part of the batch before it is written: the deployments with where they were
        (service, environment, time), the changes with their service, if stored; the incidents.
        (A key in two parts is queued twice, the second time with where the first part put it:
        deriving both places as well is harmless.)"""
        self.conn.executemany(
            "INSERT INTO temp.dora_batch SELECT 'deployment', ?1, ?2, d.service, d.environment, d.listed_at, NULL "
            "FROM (SELECT 1) LEFT JOIN deployments d ON d.source = ?1 AND d.id = ?2",
            list(rows.deployments),  # (in any order: the queue is a set)
        )
        self.conn.executemany(
            "INSERT INTO temp.dora_batch SELECT 'change', ?1, ?2, c.service, NULL, NULL, ?3 "
            "FROM (SELECT 1) LEFT JOIN changes c ON c.source = ?1 AND c.id = ?2",
            [row[:3] for row in rows.changes.values()],  # source, id, service
        )
        self.conn.executemany(
            "INSERT INTO temp.dora_batch VALUES ('incident', ?, ?, NULL, NULL, NULL, NULL)", list(rows.incidents)
        )

    def derive(self) -> None:
        """Derive everything queued (the whole batch written)."""
        top = self.conn.execute("SELECT max(rowid) FROM temp.dora_batch").fetchone()[0]
        if top is not None:
            changes = f"(SELECT service, id FROM temp.dora_batch WHERE kind = 'change' AND rowid <= {int(top)}) p"
            _apply(self.conn, "temp.dora_batch", top, changes)


REBUILD_AT = 200_000
"""A queue longer than this is applied by rebuilding everything, set-based."""


def refresh(conn: sqlite3.Connection) -> int:
    """Apply the pending queue in one write transaction; return how many entries it held."""
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM dora_pending)").fetchone()[0]:
        return 0
    with transaction(conn):
        top, count = conn.execute("SELECT max(rowid), count(*) FROM dora_pending").fetchone()
        if count > REBUILD_AT:
            rebuild(conn)
        elif count:
            changes = (
                f"dora_pending q CROSS JOIN changes p ON p.source = q.source AND p.id = q.id "
                f"WHERE q.kind = 'change' AND q.rowid <= {int(top)}"
            )
            _apply(conn, "dora_pending", top, f"(SELECT p.service, p.id FROM {changes}) p")
            conn.execute("DELETE FROM dora_pending WHERE rowid <= ?", (top,))
    return int(count)


def _apply(conn: sqlite3.Connection, queue: str, top: int, changes: str) -> None:
    """Recompute what the events queued in ``queue`` (``dora_pending``'s columns; up to rowid ``top``)
    can have changed; ``changes`` gives the service of each queued change now (``service, id``, aliased
    ``p``: the batch's own queue holds it, a queue left in ``dora_pending`` looks it up).

    The keys travel in temporary tables from statement to statement, not through Python:
    each step is one set-based statement, whatever the batch's size. A key queued twice
    (by two batches in ``dora_pending``) is harmless: every step is a set operation.
    """
    replaced = f"p.kind = 'deployment' AND p.old_service IS NOT NULL AND p.rowid <= {int(top)}"  # stored before

    def queued(kind: str) -> str:
        return f"(SELECT source, id FROM {queue} WHERE kind = '{kind}' AND rowid <= {int(top)}) p"

    _temp(conn, "dora_touched")
    touch = "INSERT OR IGNORE INTO temp.dora_touched SELECT s.service, s.environment, s.change_id FROM "
    # The changes the queued deployments shipped, before and after: their leads may move.
    ships = f"{queued('deployment')} CROSS JOIN dora_ships s ON s.dep_source = p.source AND s.dep_id = p.id"
    conn.execute(touch + ships)
    conn.execute(
        f"DELETE FROM dora_ships WHERE (dep_source, dep_id) IN (SELECT source, id FROM {queued('deployment')})"
    )
    current = f"{queued('deployment')} CROSS JOIN deployments d ON d.source = p.source AND d.id = p.id"
    conn.execute(f"INSERT OR IGNORE INTO dora_ships {ships_sql(SQLITE, current, distinct=False)}")
    conn.execute(touch + ships)
    # A change (re)stored: the leads of every environment that shipped it, in its service before and now.
    conn.execute(f"{touch}{changes} CROSS JOIN dora_ships s ON s.service = p.service AND s.change_id = p.id")
    conn.execute(
        f"{touch}(SELECT DISTINCT old_service, id FROM {queue} WHERE kind = 'change' "
        "AND old_service IS NOT NULL AND rowid <= ?) p "
        "CROSS JOIN dora_ships s ON s.service = p.old_service AND s.change_id = p.id",
        (top,),
    )
    _recount_lead_days(conn, _relead(conn))

    # The days and scopes of the queued deployments, where they were and where they are.
    deploy_days: set[tuple[str, str, int]] = set()
    relink_from: dict[tuple[str, str], int] = {}
    for service, environment, day, earliest in [
        *conn.execute(
            f"SELECT p.old_service, p.old_environment, {SQLITE.day('p.old_listed_at')}, min(p.old_listed_at) "
            f"FROM {queue} p WHERE {replaced} GROUP BY 1, 2, 3"
        ),
        *conn.execute(
            f"SELECT d.service, d.environment, {SQLITE.day('d.listed_at')}, min(d.listed_at) FROM {current} "
            "GROUP BY 1, 2, 3"
        ),
    ]:
        deploy_days.add((service, environment, day))
        _earliest(relink_from, (service, environment), earliest)

    _temp(conn, "dora_relink")
    relink = "INSERT OR IGNORE INTO temp.dora_relink SELECT i.source, i.id FROM "
    conn.execute(f"{relink}{queued('incident')} CROSS JOIN incidents i ON i.source = p.source AND i.id = p.id")
    for (service, environment), since in relink_from.items():
        # Incidents that start after ``since`` (their cause may move) or end after it (their fix may).
        for column, index in (("started_at", "incidents_by_scope"), ("resolved_at", "incidents_by_resolution")):
            conn.execute(
                f"{relink}incidents i INDEXED BY {index} WHERE service = ? AND environment = ? AND {column} >= ?",
                (service, environment, since),
            )
    # Incidents whose caused_by names a queued deployment, as it was (it may have moved) and is.
    by_cause = "CROSS JOIN incidents i INDEXED BY incidents_by_cause ON i.service = {service} AND i.caused_by = {id}"
    conn.execute(f"{relink}{current} {by_cause.format(service='d.service', id='d.id')}")
    conn.execute(f"{relink}{queue} p {by_cause.format(service='p.old_service', id='p.id')} WHERE {replaced}")
    linked_days, incident_days = _relink(conn)
    _recount_deploy_days(conn, deploy_days | linked_days)
    _recount_incident_days(conn, incident_days)


def _earliest(earliest: dict[tuple[str, str], int], key: tuple[str, str], moment: int) -> None:
    if key not in earliest or moment < earliest[key]:
        earliest[key] = moment


def _temp(conn: sqlite3.Connection, name: str) -> None:
    """Create the temporary table ``name`` if needed (each connection has its own), and empty it."""
    keyed = " WITHOUT ROWID" if "PRIMARY KEY" in _TEMP_TABLES[name] else ""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({_TEMP_TABLES[name]}){keyed}")
    conn.execute(f"DELETE FROM temp.{name}")


_TEMP_TABLES = {
    "dora_batch": "kind TEXT, source TEXT, id TEXT, old_service TEXT, old_environment TEXT, old_listed_at INTEGER, "
    "service TEXT",  # dora_pending's columns, and a change's service in the batch
    "dora_touched": "service TEXT, environment TEXT, change_id TEXT, PRIMARY KEY (service, environment, change_id)",
    "dora_relink": "source TEXT, id TEXT, PRIMARY KEY (source, id)",
    "dora_days": "service TEXT, environment TEXT, day INTEGER, PRIMARY KEY (service, environment, day)",
}
"""The keys a derivation passes from statement to statement."""
_TOUCHED_LEADS = (
    f"SELECT DISTINCT l.service, l.environment, {SQLITE.day('l.deployed_at')} "
    "FROM temp.dora_touched t CROSS JOIN dora_leads l "
    "ON l.service = t.service AND l.environment = t.environment AND l.change_id = t.change_id"
)
# CROSS JOIN keeps SQLite's loop order: the few touched keys outside, the big tables by index inside.


def _relead(conn: sqlite3.Connection) -> set[tuple[str, str, int]]:
    """Recompute the lead rows of the keys in ``temp.dora_touched``; return the (service, environment,
    day)s that changed."""
    gone = conn.execute(
        "DELETE FROM dora_leads WHERE (service, environment, change_id) IN "
        "(SELECT service, environment, change_id FROM temp.dora_touched) RETURNING service, environment, deployed_at"
    )
    dirty = {(service, environment, day_of(deployed_at)) for service, environment, deployed_at in gone}
    conn.execute(f"INSERT INTO dora_leads {leads_sql(SQLITE, 'temp.dora_touched k')}")
    dirty |= {(row[0], row[1], row[2]) for row in conn.execute(_TOUCHED_LEADS)}
    return dirty


_DAY_ROWS = (
    "temp.dora_days k CROSS JOIN {table} ON {alias}.service = k.service AND {alias}.environment = k.environment "
    "AND {alias}.{column} >= k.day * {day_us} AND {alias}.{column} < (k.day + 1) * {day_us}"
)
_ENV_DAYS = "(SELECT DISTINCT environment, day FROM temp.dora_days) k"
_BUCKET_SUMS = "sum(t.n), sum(t.total), min(t.low), max(t.high)"


def _recount(
    conn: sqlite3.Connection,
    days: Iterable[tuple[str, str, int]],
    table: str,
    rows: tuple[str, str, str],
    selects: Callable[[str], list[str]],
    every: str,
    sums: str,
) -> None:
    """Replace ``table``'s rows of ``days`` by ``selects`` of the ``rows`` (table, alias, time column)
    of those days, then its all-services (``''``) rows of their environments by the ``sums`` of its
    rows per ``every`` (its key after the environment, ``k.day`` and the others' ``t.`` columns)."""
    _temp(conn, "dora_days")
    conn.executemany("INSERT OR IGNORE INTO temp.dora_days VALUES (?, ?, ?)", days)
    of_days = "SELECT service, environment, day FROM temp.dora_days"
    conn.execute(f"DELETE FROM {table} WHERE (service, environment, day) IN ({of_days})")
    source, alias, column = rows
    for select in selects(_DAY_ROWS.format(table=source, alias=alias, column=column, day_us=DAY_US)):
        conn.execute(f"INSERT INTO {table} {select}")
    conn.execute(f"DELETE FROM {table} WHERE service = '' AND (environment, day) IN (SELECT * FROM {_ENV_DAYS})")
    conn.execute(
        f"INSERT INTO {table} SELECT '', k.environment, {every}, {sums} FROM {_ENV_DAYS} CROSS JOIN {table} t "
        f"ON t.environment = k.environment AND t.day = k.day AND t.service != '' GROUP BY k.environment, {every}"
    )


def _recount_months(conn: sqlite3.Connection, days: set[tuple[str, str, int]], prefix: str, staged: bool) -> None:
    """Re-sum the month rollups (``<prefix>_months``) of ``days`` and their all-services rows from
    their day rollups (``staged``: the breakdown's, keyed by stage after the environment)."""
    months = {(s, e, month_of(d)) for s, e, d in days}
    within, key = (f" AND {EVERY_STAGE}", "stage, ") if staged else ("", "")
    for service, environment, month in months | {("", e, m) for _, e, m in months}:
        first, end = month_days(month)
        conn.execute(
            f"DELETE FROM {prefix}_months WHERE service = ? AND environment = ?{within} AND month = ?",
            (service, environment, month),
        )
        conn.execute(
            f"INSERT INTO {prefix}_months SELECT service, environment, {key}?, bucket, sum(n), sum(total), "
            f"min(low), max(high) FROM {prefix}_days WHERE service = ? AND environment = ?{within} "
            f"AND day >= ? AND day < ? GROUP BY {key}bucket",
            (month, service, environment, first, end),
        )


def _recount_deploy_days(conn: sqlite3.Connection, days: set[tuple[str, str, int]]) -> None:
    _recount(
        conn,
        days,
        "dora_deploy_days",
        ("deployments d INDEXED BY deployments_by_scope", "d", "listed_at"),
        lambda rows: [
            f"SELECT k.service, k.environment, k.day, {DEPLOY_DAY_COLUMNS} FROM {rows} "
            "GROUP BY k.service, k.environment, k.day"
        ],
        "k.day",
        "sum(t.deployments), sum(t.failures), sum(t.rework), sum(t.failed)",
    )


def _recount_incident_days(conn: sqlite3.Connection, days: set[tuple[str, str, int]]) -> None:
    _recount(
        conn,
        days,
        "dora_incident_days",
        (LINKS_BY_SERVICE, "l", "started_at"),
        lambda rows: incident_days_sql(SQLITE, f"{rows} WHERE true", "k.day"),
        "k.day, t.kind, t.bucket",
        _BUCKET_SUMS,
    )


def _leads_by_time(alias: str) -> tuple[str, str, str]:
    return f"dora_leads {alias} INDEXED BY dora_leads_by_time", alias, "deployed_at"


def _recount_lead_days(conn: sqlite3.Connection, days: set[tuple[str, str, int]]) -> None:
    """Recount the lead time's and its breakdown's day and month rollups of ``days``."""
    _recount(
        conn,
        days,
        "dora_lead_days",
        _leads_by_time("l"),
        lambda rows: [
            f"SELECT k.service, k.environment, k.day, {lead_day_aggregates(SQLITE)} FROM {rows} "
            "GROUP BY k.service, k.environment, k.day, bucket"
        ],
        "k.day, t.bucket",
        _BUCKET_SUMS,
    )
    _recount_months(conn, days, "dora_lead", staged=False)
    _recount(
        conn,
        days,
        "dora_stage_days",
        _leads_by_time("s"),  # (stage_days_sql's alias)
        lambda rows: stage_days_sql(SQLITE, f"{rows} WHERE true", "k.day"),
        "t.stage, k.day, t.bucket",
        _BUCKET_SUMS,
    )
    _recount_months(conn, days, "dora_stage", staged=True)


_RELINKED_DAYS = (
    "SELECT l.service, l.environment, l.started_at, l.cause_env, l.cause_at, l.fix_at FROM temp.dora_relink k "
    "CROSS JOIN dora_incident_links l ON l.inc_source = k.source AND l.inc_id = k.id"
)


def _relink(conn: sqlite3.Connection) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]]]:
    """Recompute the links of the incidents in ``temp.dora_relink`` (``link_sql``), set-based.

    Returns the deployment days whose failed or rework counts may have changed (those of
    the causes and fixes before and after), and the incident days whose rollups must be
    recounted.
    """
    deploy_days: set[tuple[str, str, int]] = set()
    incident_days: set[tuple[str, str, int]] = set()

    def touched() -> None:
        for service, environment, started, cause_env, cause_at, fix_at in conn.execute(_RELINKED_DAYS):
            incident_days.add((service, environment, day_of(started)))
            if cause_at is not None:
                deploy_days.add((service, cause_env, day_of(cause_at)))
            if fix_at is not None:
                deploy_days.add((service, environment, day_of(fix_at)))

    touched()
    conn.execute(
        "INSERT OR REPLACE INTO dora_incident_links "
        + link_sql(SQLITE, "temp.dora_relink k CROSS JOIN incidents i ON i.source = k.source AND i.id = k.id")
    )
    touched()
    return deploy_days, incident_days
