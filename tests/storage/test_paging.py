"""The listing SQL and paging that the SQLite backend and the PostgreSQL plugin share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from metrichub_core.models import Change
from metrichub_core.storage.base import EventQuery
from metrichub_core.storage.sql.paging import (
    decode_cursor,
    encode_cursor,
    from_micros,
    listing_sql,
    optional_micros,
    optional_moment,
    page_of,
    to_micros,
)


def labels(found: Mapping[str, str]) -> tuple[list[str], list[Any]]:
    return ["labels ~ L"], [dict(found)]


@pytest.mark.parametrize("mark", ["?", "%s"])
def test_listing_sql_in_either_placeholder_style(mark: str) -> None:
    since = datetime(2026, 3, 2, tzinfo=UTC)
    cursor = encode_cursor((5, "gh", "d1"))
    query = EventQuery(kind="deployment", service="api", environment="staging", since=since, labels={"team": "core"})
    sql, params = listing_sql(
        replace(query, cursor=cursor, limit=10),
        table="deployments",
        time_column="listed_at",
        columns="*",
        mark=mark,
        labels=labels,
    )
    assert sql == (
        f"SELECT * FROM deployments WHERE service = {mark} AND environment = {mark} AND labels ~ L AND "
        f"listed_at >= {mark} AND (listed_at, source, id) < ({mark}, {mark}, {mark}) "
        f"ORDER BY listed_at DESC, source DESC, id DESC LIMIT {mark}"
    )
    assert params == ["api", "staging", {"team": "core"}, to_micros(since), 5, "gh", "d1", 11]


def test_only_deployments_carry_labels_and_changes_no_environment() -> None:
    query = EventQuery(kind="change", environment="production", labels={"team": "core"}, limit=3)
    sql, params = listing_sql(query, table="changes", time_column="committed_at", columns="id", mark="?", labels=labels)
    assert "WHERE 1 = 0 ORDER BY" in sql and params == [4]


def test_a_page_holds_the_limit_and_a_cursor_when_there_is_more() -> None:
    moment = datetime(2026, 3, 2, 12, 30, 0, 7, tzinfo=UTC)
    rows = [(to_micros(moment) - n, f"c{n}") for n in range(3)]

    def change(row: tuple[int, str]) -> Change:
        return Change(id=row[1], source="gh", service="api", committed_at=from_micros(row[0]))

    page = page_of(rows, 2, change, lambda row: (row[0], "gh", row[1]))
    assert [item.id for item in page.items] == ["c0", "c1"]
    assert page.next_cursor is not None and decode_cursor(page.next_cursor) == (rows[1][0], "gh", "c1")
    assert page_of(rows, 3, change, lambda row: (row[0], "gh", row[1])).next_cursor is None
    first = page.items[0]
    assert isinstance(first, Change) and first.committed_at == moment
    assert optional_moment(None) is None and optional_micros(None) is None
    assert optional_moment(optional_micros(moment)) == moment
