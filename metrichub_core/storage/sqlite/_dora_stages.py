"""The SQLite side of the lead-time breakdown's derived data (``metrichub_core.storage.sql.stages``).

``_dora_derive`` calls ``restage`` right after recomputing lead rows (their keys still in
``temp.dora_touched``), then ``recount_stage_days`` for the days those rows left or entered.
"""

from __future__ import annotations

import sqlite3

from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.rollups import DAY_US, month_days, month_of
from metrichub_core.storage.sql.stages import EVERY_STAGE, stage_days_sql, stage_rows_sql

__all__ = ["recount_stage_days", "restage"]

_STAGES_OF_DAY = (
    "dora_lead_stages s INDEXED BY dora_lead_stages_by_time "
    "WHERE s.service = ? AND s.environment = ? AND s.deployed_at >= ? AND s.deployed_at < ?"
)


def restage(conn: sqlite3.Connection) -> None:
    """Recompute the stage rows of the lead keys in ``temp.dora_touched`` from their lead rows."""
    conn.executemany(
        "DELETE FROM dora_lead_stages WHERE service = ? AND environment = ? AND change_id = ?",
        conn.execute("SELECT service, environment, change_id FROM temp.dora_touched").fetchall(),
    )
    leads = (
        "temp.dora_touched t CROSS JOIN dora_leads l "
        "ON l.service = t.service AND l.environment = t.environment AND l.change_id = t.change_id"
    )
    conn.execute(f"INSERT INTO dora_lead_stages {stage_rows_sql(SQLITE, leads)}")


def recount_stage_days(conn: sqlite3.Connection, days: set[tuple[str, str, int]]) -> None:
    """Recount the stage rollups of (service, environment, day)s, their all-services rows and months."""
    scopes = set(days) | {("", environment, day) for _, environment, day in days}
    for service, environment, day in sorted(scopes, key=lambda key: key[0] == ""):  # services first, then ''
        conn.execute(
            f"DELETE FROM dora_stage_days WHERE service = ? AND environment = ? AND {EVERY_STAGE} AND day = ?",
            (service, environment, day),
        )
        if service:
            for select in stage_days_sql(SQLITE, _STAGES_OF_DAY, "?"):
                conn.execute(
                    f"INSERT INTO dora_stage_days {select}",
                    (day, service, environment, day * DAY_US, (day + 1) * DAY_US),
                )
        else:
            conn.execute(
                "INSERT INTO dora_stage_days SELECT '', environment, stage, day, bucket, sum(n), sum(total), "
                "min(low), max(high) FROM dora_stage_days WHERE service != '' AND environment = ? AND day = ? "
                "GROUP BY stage, bucket",
                (environment, day),
            )
    for service, environment, month in {(s, e, month_of(d)) for s, e, d in scopes}:
        first, end = month_days(month)
        conn.execute(
            f"DELETE FROM dora_stage_months WHERE service = ? AND environment = ? AND {EVERY_STAGE} AND month = ?",
            (service, environment, month),
        )
        conn.execute(
            "INSERT INTO dora_stage_months SELECT service, environment, stage, ?, bucket, sum(n), sum(total), "
            f"min(low), max(high) FROM dora_stage_days WHERE service = ? AND environment = ? AND {EVERY_STAGE} "
            "AND day >= ? AND day < ? GROUP BY stage, bucket",
            (month, service, environment, first, end),
        )
