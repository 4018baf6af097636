"""The SQLite side of the lead-time breakdown's rollups (``metrichub_core.storage.sql.stages``).

The stages are columns of the lead rows, written with them; ``_dora_derive`` then calls
``recount_stage_days`` for the days those rows left or entered (in ``temp.dora_days``) —
set-based, like the other rollups' recounts.
"""

from __future__ import annotations

import sqlite3

from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.rollups import DAY_US, month_days, month_of
from metrichub_core.storage.sql.stages import EVERY_STAGE, STAGES, stage_days_sql

__all__ = ["recount_stage_days"]

_LEADS_OF_DAYS = (
    "temp.dora_days k CROSS JOIN dora_leads s INDEXED BY dora_leads_by_time "
    "ON s.service = k.service AND s.environment = k.environment "
    f"AND s.deployed_at >= k.day * {DAY_US} AND s.deployed_at < (k.day + 1) * {DAY_US} WHERE true"
)
_ENV_DAYS = "(SELECT DISTINCT environment, day FROM temp.dora_days) k"


def recount_stage_days(conn: sqlite3.Connection) -> None:
    """Recount the stage rollups of the (service, environment, day)s in ``temp.dora_days``, their
    all-services rows and their months."""
    for stage, _, _ in STAGES:  # the stage sits between scope and day in the key: one delete per stage
        conn.execute(
            "DELETE FROM dora_stage_days WHERE (service, environment, stage, day) IN "
            "(SELECT service, environment, ?, day FROM temp.dora_days)",
            (stage,),
        )
    for select in stage_days_sql(SQLITE, _LEADS_OF_DAYS, "k.day"):
        conn.execute(f"INSERT INTO dora_stage_days {select}")
    for stage, _, _ in STAGES:
        conn.execute(
            "DELETE FROM dora_stage_days WHERE (service, environment, stage, day) IN "
            f"(SELECT '', k.environment, ?, k.day FROM {_ENV_DAYS})",
            (stage,),
        )
    conn.execute(
        "INSERT INTO dora_stage_days SELECT '', k.environment, t.stage, k.day, t.bucket, sum(t.n), sum(t.total), "
        f"min(t.low), max(t.high) FROM {_ENV_DAYS} CROSS JOIN dora_stage_days t "
        "ON t.environment = k.environment AND t.day = k.day AND t.service != '' "
        "GROUP BY k.environment, k.day, t.stage, t.bucket"
    )
    months = {(s, e, month_of(d)) for s, e, d in conn.execute("SELECT service, environment, day FROM temp.dora_days")}
    for service, environment, month in months | {("", e, m) for _, e, m in months}:
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
