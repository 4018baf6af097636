"""Labelled reports read only what their window depends on, and still count what lies outside it.

A label filter cannot use the rollups; the SQL backends then read the window's events
(``metrichub_core.storage.sql.bounded``). These cases put the facts a window depends on
outside it: a change first shipped before it, an incident attributed to a deployment
before it, an incident after it attributed to a deployment in it, a fix in it of an
incident before it. Every backend (memory = the reference rules) must give the numbers
computed by hand here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from dora_builders import T0, D, H, M, chg, dep, inc

from metrichub_core import MetricHub
from metrichub_core.dora import DoraScope, FactsRequest, Window, split
from metrichub_core.storage.sql.bounded import window_events
from metrichub_core.storage.sql.dialect import SQLITE
from metrichub_core.storage.sql.facts import run, window_facts
from metrichub_core.storage.sqlite import SQLiteStorage

A = {"team": "a"}
EVENTS = [
    chg("c1", 0 * D),
    dep("d_old", 5 * D, ["c1"], labels=A),  # ships c1 first, before the window
    dep("d_prev", 8 * D, labels=A),
    chg("c2", 10 * D),
    dep("d_fix", 10 * D + 2 * H, ["c1", "c2"], labels=A),  # day 10: c2 ships (c1 shipped already)
    dep("d_b", 11 * D + 1 * H, labels={"team": "b"}),
    dep("d_late", 11 * D + 3 * H, labels=A),  # day 11
    dep("d_fail", 11 * D + 4 * H, status="failure", labels=A),  # day 11
    inc("i1", 9 * D, 10 * D + 3 * H),  # before the window, by time d_prev's; fixed by d_fix (rework)
    inc("i2", 10 * D + 1 * H, 10 * D + 1 * H + 30 * M),  # day 10, by time d_prev's (before the window, team a)
    inc("i3", 13 * D),  # after the window, by time d_late's: d_late failed
    inc("i4", 11 * D + 2 * H),  # day 11, by time d_b's (team b): not counted under team a
]
SINCE, UNTIL = T0 + 10 * D, T0 + 12 * D


async def test_a_labelled_trend_counts_what_lies_outside_its_window(hub: MetricHub) -> None:
    await hub.ingest(EVENTS)
    trend = await hub.dora_trend(since=SINCE, until=UNTIL, bucket="day", labels=A)
    day10, day11 = (point.model_dump(mode="json") for point in trend.points)

    assert day10["deployment_frequency"]["count"] == 1  # d_fix
    assert day10["lead_time"]["count"] == 1  # c2 only: c1 was first shipped by d_old
    assert day10["lead_time"]["median_seconds"] == 7200.0  # 10D + 2H - 10D
    assert day10["change_failure_rate"] == {"value": 0.0, "failed": 0, "total": 1, "level": "elite"}
    assert day10["rework_rate"] == {"value": 1.0, "rework": 1, "total": 1}  # d_fix fixed i1
    assert day10["failed_deployment_recovery_time"]["median_seconds"] == 1800.0  # i2: 30 minutes, d_prev's
    assert day10["time_to_restore"]["count"] == 1

    assert day11["deployment_frequency"]["count"] == 1  # d_late (d_b is team b)
    assert day11["change_failure_rate"] == {"value": 1.0, "failed": 1, "total": 1, "level": "low"}  # i3 on d_late
    assert day11["rework_rate"] == {"value": 0.0, "rework": 0, "total": 1}
    assert day11["lead_time"]["count"] == 0
    assert day11["time_to_restore"]["count"] == 0 and day11["time_to_restore"]["open"] == 0  # i4 is d_b's


async def test_a_labelled_report_counts_failed_runs_and_every_window_alike(hub: MetricHub) -> None:
    await hub.ingest(EVENTS)
    report = await hub.dora(since=SINCE, until=UNTIL, labels=A, options={"failed_deployments_count": True})
    # d_late (i3) and the failed run d_fail, of d_fix, d_late and d_fail: 2 / 3.
    assert report.change_failure_rate.failed == 2 and report.change_failure_rate.total == 3
    assert report.lead_time.count == 1 and report.lead_time.median_seconds == 7200.0
    assert report.failed_deployment_recovery_time.count == 1
    # The same window as one trend bucket, and as two reports, gives the same numbers.
    (point,) = (await hub.dora_trend(since=SINCE, until=UNTIL, bucket="month", labels=A)).points
    assert point.model_dump() == (await hub.dora(since=SINCE, until=UNTIL, labels=A)).model_dump()


async def test_no_report_question_reads_a_deployments_change_ids(tmp_path: Path) -> None:
    """Issue 19 item 3: a report's cost does not grow with one event's size (a deployment's 10,000
    change ids are read once, when it is derived, never by a report)."""
    storage = SQLiteStorage(f"sqlite:///{tmp_path}/reads.db")
    await storage.open()
    try:
        await storage.upsert(EVENTS)
        await storage.refresh_dora()
        asked: list[str] = []

        def ask(conn: sqlite3.Connection, request: FactsRequest) -> None:
            def execute(sql: str, params: tuple[Any, ...]) -> list[Any]:
                asked.append(sql)
                return conn.execute(sql, params).fetchall()

            events = run(window_events(SQLITE, request), execute)
            # The window's deployments (labels are checked by the rules), not d_old or d_prev; i1-i4.
            assert [d.id for d in events.successes] == ["d_fix", "d_b", "d_late"] and len(events.links) == 4
            for window in request.windows:
                run(window_facts(SQLITE, replace(request, scope=DoraScope()), window), execute)

        windows = split(Window(SINCE, UNTIL), "day")
        await storage.read(lambda conn: ask(conn, FactsRequest(DoraScope(labels=A), windows)))
        assert asked and not [sql for sql in asked if "change_ids" in sql]
    finally:
        await storage.close()
