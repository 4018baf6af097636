"""The DORA rollup logic that the SQLite backend and the PostgreSQL plugin share."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest

from metrichub_core.dora import Bucket, DoraOptions, DoraScope, Summary, Window
from metrichub_core.storage.sql.dialect import POSTGRES, SQLITE, Dialect
from metrichub_core.storage.sql.rollups import (
    DAY_US,
    DeployTally,
    IncidentFacts,
    ScopeSQL,
    WindowPlan,
    assemble,
    bucket_rows,
    day_of,
    merged_buckets_sql,
    month_days,
    month_of,
    rollup_table,
    summary_of,
    with_values,
)
from metrichub_core.storage.sqlite._schema import migrate

EPOCH = date(1970, 1, 1)


def day(year: int, month: int, number: int) -> int:
    return (date(year, month, number) - EPOCH).days


def at(year: int, month: int, number: int, hour: int = 0) -> datetime:
    return datetime(year, month, number, hour, tzinfo=UTC)


def test_day_and_month_numbers() -> None:
    assert day_of(0) == 0 and day_of(DAY_US - 1) == 0 and day_of(-1) == -1
    assert month_of(day(2024, 2, 29)) == 2024 * 12 + 1
    assert month_days(2024 * 12 + 1) == (day(2024, 2, 1), day(2024, 3, 1))
    assert month_days(2023 * 12 + 11) == (day(2023, 12, 1), day(2024, 1, 1))


def test_a_window_inside_one_day_is_one_edge() -> None:
    plan = WindowPlan.of(Window(at(2026, 3, 2, 10), at(2026, 3, 2, 15)))
    assert plan.days is None
    assert plan.edges == ((plan.since, plan.until),)
    assert plan.rollup_ranges() == []


def test_whole_months_and_days_between_partial_edges() -> None:
    plan = WindowPlan.of(Window(at(2025, 12, 30, 6), at(2026, 3, 4, 12)))
    assert plan.days == (day(2025, 12, 31), day(2026, 3, 4))
    assert plan.edges == (
        (plan.since, day(2025, 12, 31) * DAY_US),
        (day(2026, 3, 4) * DAY_US, plan.until),
    )
    months, days = plan.rollup_ranges()
    # January and February 2026 merge into one range; the other whole days stay days.
    assert months == ("dora_lead_months", "month", [(2026 * 12, 2026 * 12 + 2)])
    assert days == ("dora_lead_days", "day", [(day(2025, 12, 31), day(2026, 1, 1)), (day(2026, 3, 1), day(2026, 3, 4))])


def test_a_window_of_whole_days_has_no_edges() -> None:
    plan = WindowPlan.of(Window(at(2026, 3, 2), at(2026, 3, 9)))
    assert plan.edges == () and plan.days == (day(2026, 3, 2), day(2026, 3, 9))


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgresql"])
def test_scope_sql_in_either_placeholder_style(dialect: Dialect) -> None:
    mark = dialect.mark
    every = ScopeSQL.of(DoraScope(environment="staging"), mark)
    assert (every.service, every.where, every.params) == ("", "", ())
    one = ScopeSQL.of(DoraScope(service="api"), mark)
    assert (one.service, one.where, one.params) == ("api", f"service = {mark} AND ", ("api",))
    sql, params = one.incidents_known_sql()
    assert sql.count(mark) == len(params) == 2
    sql, params = one.deploy_days_sql("day", (1, 2))
    assert sql.count(mark) == len(params) == 4
    parts, values = one.rollup_parts(dialect, WindowPlan.of(Window(at(2026, 1, 1), at(2026, 3, 5))))
    assert len(parts) == 2 and " ".join(parts).count(mark) == len(values) == 8
    parts, values = one.rollup_parts(
        dialect, WindowPlan.of(Window(at(2025, 1, 1), at(2026, 1, 1))), "dora_stage", "merge"
    )
    assert len(parts) == 1 and parts[0].count(mark) == len(values) == 5 and "merge" in values
    assert "GROUP BY bucket" in parts[0]  # a year of months is summed as it is read


def test_a_year_of_month_rows_is_summed_in_bucket_order_without_a_sort() -> None:
    """SQLite reads a long month range through the bucket-ordered index and streams the sums."""
    conn = sqlite3.connect(":memory:")
    migrate(conn)
    scope = ScopeSQL.of(DoraScope(service="api"), "?")
    plan = WindowPlan.of(Window(at(2025, 1, 1), at(2026, 1, 1)))
    for stage in (None, "merge"):
        (part,), values = scope.rollup_parts(SQLITE, plan, "dora_stage" if stage else "dora_lead", stage)
        plan_rows = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {part}", values)]
        assert any("COVERING INDEX" in row and "_by_bucket" in row for row in plan_rows), plan_rows
        assert not any("TEMP B-TREE" in row for row in plan_rows), plan_rows
    rows = [("api", "production", month, bucket, 1, 2.0, 1.0, 1.0) for month in (24300, 24305) for bucket in (7, 3)]
    conn.executemany("INSERT INTO dora_lead_months VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    (part,), values = scope.rollup_parts(SQLITE, plan)
    merged = bucket_rows(conn.execute(merged_buckets_sql([part]), values))
    assert merged == {3: Bucket(2, 4.0, 1.0, 1.0), 7: Bucket(2, 4.0, 1.0, 1.0)}


def test_merged_buckets_name_their_columns_whatever_the_parts_name_theirs() -> None:
    """Edge parts alone (``SELECT bucket, 1, x, x, x``) once broke PostgreSQL's ``sum(n)``."""
    conn = sqlite3.connect(":memory:")
    parts = ["SELECT 3, 1, 2.5, 2.5, 2.5", "SELECT 3, 1, 4.0, 4.0, 4.0", "SELECT -1, 1, 0, 0, 0"]
    merged = bucket_rows(conn.execute(merged_buckets_sql(parts)))
    assert merged == {3: Bucket(2, 6.5, 2.5, 4.0), -1: Bucket(1, 0, 0, 0)}


def test_single_values_join_merged_buckets() -> None:
    from metrichub_core.dora._stats import bucket_of

    merged = with_values({bucket_of(10.0): Bucket(2, 20.5, 10.0625, 10.4375)}, [10.03125, 500.0])
    assert merged == {
        bucket_of(10.0): Bucket(3, 30.53125, 10.03125, 10.4375),
        bucket_of(500.0): Bucket(1, 500.0, 500.0, 500.0),
    }


def test_summary_is_exact_up_to_the_limit() -> None:
    merged = with_values({}, [1.0, 2.0, 3.0])
    assert summary_of(merged, 3, lambda: [1.0, 2.0, 3.0]).is_exact
    assert not summary_of(merged, 2, lambda: pytest.fail("not asked")).is_exact


def test_tally_and_assembly() -> None:
    tally = DeployTally()
    tally.add_days([(day(2026, 3, 2), 2, 1, 1, 1), (day(2026, 3, 3), 0, 1, 0, 0)])
    tally.add_deployments([(day(2026, 3, 4) * DAY_US + 5, "success", 1), (0, "failure", 0), (0, "running", 0)])
    assert (tally.count, tally.failures, tally.rework, tally.failed) == (3, 3, 2, 1)
    assert tally.deploy_days() == {date(2026, 3, 2): 2, date(2026, 3, 4): 1}
    none = Summary.exact([])
    incidents = IncidentFacts(1, none, 0, none, 0, 0, 0, 0, True)
    lead = (Summary.exact([60.0]), 1, 2)
    assert assemble(DoraOptions(), tally, lead, incidents).failed == 1
    facts = assemble(DoraOptions(failed_deployments_count=True), tally, lead, incidents)
    assert (facts.failed, facts.deployments, facts.rework, facts.negative_lead_times, facts.missing_changes) == (
        4,
        3,
        2,
        1,
        2,
    )


def test_rollup_table_ddl() -> None:
    ddl = rollup_table("x", "service TEXT NOT NULL, day INTEGER NOT NULL", integer="INTEGER", real="REAL")
    conn = sqlite3.connect(":memory:")
    conn.execute(ddl)
    conn.execute("INSERT INTO x VALUES ('a', 1, 2, 3, 4.5, 4.5, 4.5)")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO x VALUES ('a', 1, 2, 1, 0, 0, 0)")


def test_both_backends_share_this_module() -> None:
    from metrichub_core.storage.sql import rollups
    from metrichub_core.storage.sqlite import _dora_derive as _sqlite_dora_derive

    assert vars(_sqlite_dora_derive)["month_of"] is rollups.month_of
    postgres = pytest.importorskip("metrichub_plugin_postgres._dora_write")
    assert postgres.month_days is rollups.month_days


def test_day_of_floors_negative_times() -> None:
    assert day_of(-DAY_US) == -1 and day_of(-DAY_US - 1) == -2
    assert WindowPlan.of(Window(at(1969, 12, 31, 12), at(1970, 1, 1, 12))).days is None
    assert timedelta(days=1) // timedelta(microseconds=1) == DAY_US


def _sqlite_buckets(conn: sqlite3.Connection, values: list[float]) -> list[int]:
    from metrichub_core.storage.sql.dialect import SQLITE

    conn.execute("CREATE TEMP TABLE IF NOT EXISTS v (n INTEGER PRIMARY KEY, s REAL)")
    conn.execute("DELETE FROM v")
    conn.executemany("INSERT INTO v (s) VALUES (?)", [(value,) for value in values])
    return [bucket for (bucket,) in conn.execute(f"SELECT {SQLITE.bucket('s')} FROM v ORDER BY n")]


def _bucket_probes() -> list[float]:
    """Random durations, and the doubles on and around every bucket edge up to a day and a half."""
    import math
    import random

    from metrichub_core.dora import BUCKET_FLOOR_SECONDS, GAMMA, bucket_of

    rng = random.Random(11)
    values = [0.0, 0.0005, 0.000999, 0.001, 0.00101, 0.5, 1.0, 1.01, 1.0201, 100.0]
    values += [rng.uniform(0, 10**8) for _ in range(3_000)] + [rng.uniform(0, 2) for _ in range(1_000)]
    for k in range(1, 1_900):
        edge = BUCKET_FLOOR_SECONDS * GAMMA**k
        values += [math.nextafter(edge, 0), edge, math.nextafter(edge, math.inf)]
    assert len({bucket_of(value) for value in values}) > 1_800  # the probes do reach every edge
    return values


def test_sqlite_computes_pythons_buckets_bit_for_bit() -> None:
    from metrichub_core.dora import bucket_of
    from metrichub_core.storage.sqlite._dora_derive import functions

    values = _bucket_probes()
    conn = sqlite3.connect(":memory:")
    functions(conn)
    assert _sqlite_buckets(conn, values) == [bucket_of(value) for value in values]


def test_sqlite_without_math_functions_gets_pythons_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where SQLite was built without ``ln`` the backend registers ``math.log`` under that name."""
    from metrichub_core.dora import bucket_of
    from metrichub_core.storage.sqlite._dora_derive import functions

    conn = sqlite3.connect(":memory:")
    conn.set_authorizer(lambda action, *args: sqlite3.SQLITE_DENY if args[1] == "ln" else sqlite3.SQLITE_OK)
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("SELECT ln(1)")
    functions(conn)  # registers its own ln, which the authorizer lets through (it only denies the built-in)
    conn.set_authorizer(None)
    with pytest.raises(sqlite3.OperationalError, match="user-defined function"):
        conn.execute("SELECT ln(0)")  # math.log(0) raises, where the built-in answers NULL: ours is in use
    values = _bucket_probes()[:500]
    assert _sqlite_buckets(conn, values) == [bucket_of(value) for value in values]
