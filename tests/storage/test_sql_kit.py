"""The storage SQL kit: what each dialect writes, and rows that round-trip to the same events."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from metrichub_core.models import Change, Deployment, Event, EventKind, Incident
from metrichub_core.storage.sql.dialect import DAY_US, POSTGRES, SQLITE, Dialect, json_text
from metrichub_core.storage.sql.events import COLUMNS, SELECTED, Rows, event_of, upsert_sql
from metrichub_core.storage.sql.rollups import day_of, month_of

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _deployment(id_: str, *, labels: dict[str, str] | None = None, service: str = "api") -> Deployment:
    return Deployment(
        id=id_, source="ci", service=service, environment="production", status="success",
        started_at=T0 - timedelta(minutes=5), finished_at=T0, change_ids=["c1", "c2"], labels=labels or {},
    )  # fmt: skip


def test_sqlite_day_and_month_sql_agree_with_python_even_before_1970() -> None:
    conn = sqlite3.connect(":memory:")
    conn.create_function("dora_month", 1, month_of, deterministic=True)
    # Day numbers floor: one microsecond before the epoch is day -1, not 0 (integer division truncates).
    for micros in (0, 1, DAY_US - 1, DAY_US, -1, -DAY_US, -DAY_US - 1, 1_772_452_800_000_000):
        (day,) = conn.execute(f"SELECT {SQLITE.day(':m')}", {"m": micros}).fetchone()
        assert day == day_of(micros), micros
        (month,) = conn.execute(f"SELECT {SQLITE.month('?')}", (day,)).fetchone()
        assert month == month_of(day)


def test_upserts_per_dialect() -> None:
    # Never an older version (metrichub_core.storage.versions): the guard and the kept time.
    monotonic = (
        "ON CONFLICT (source, id) DO UPDATE SET service = excluded.service, committed_at = excluded.committed_at, "
        "merged_at = excluded.merged_at, url = excluded.url, "
        "updated_at = coalesce(excluded.updated_at, changes.updated_at) WHERE excluded.updated_at IS NULL "
        "OR changes.updated_at IS NULL OR excluded.updated_at >= changes.updated_at"
    )
    assert upsert_sql(SQLITE, "changes") == (
        "INSERT INTO changes (source, id, service, committed_at, merged_at, url, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) " + monotonic
    )
    assert upsert_sql(POSTGRES, "changes") == (
        "INSERT INTO changes (source, id, service, committed_at, merged_at, url, updated_at) SELECT source, id, "
        "service, committed_at, merged_at, url, updated_at FROM json_to_recordset(%s::json) AS batch (source text, "
        "id text, service text, committed_at int8, merged_at int8, url text, updated_at int8) " + monotonic
    )
    one = POSTGRES.upsert("source_state", (("source_id", "text"), ("state", "text")), ("source_id",))
    assert one == (
        "INSERT INTO source_state (source_id, state) VALUES (%s, %s) "
        "ON CONFLICT (source_id) DO UPDATE SET state = excluded.state"
    )


def test_rows_keep_the_last_event_of_a_key_sorted_with_rework_by_the_reference_rule() -> None:
    events: list[Event] = [
        _deployment("d2"),
        _deployment("d1", labels={"rework": "no"}),
        _deployment("d1", labels={"rework": "YES"}),
        Change(id="c1", source="git", service="api", committed_at=T0 - timedelta(hours=1)),
    ]
    rows = Rows(events, SQLITE)
    assert len(rows) == 4  # every event of the batch was written, the repeated key too
    ((deployments, written), (changes, _)) = rows.tables()
    assert (deployments, changes) == ("deployments", "changes")
    assert [row[1] for row in written] == ["d1", "d2"]
    names = [name for name, _ in COLUMNS["deployments"]]
    first = dict(zip(names, written[0], strict=True))
    assert first["rework"] is True and json.loads(first["labels"]) == {"rework": "YES"}
    assert json.loads(first["change_ids"]) == ["c1", "c2"]
    native = dict(zip(names, Rows(events, POSTGRES).tables()[0][1][0], strict=True))
    assert native["labels"] == {"rework": "YES"} and native["change_ids"] == ["c1", "c2"]
    assert rows.keys("deployments") == [("ci", "d1"), ("ci", "d2")]


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgresql"])
def test_rows_read_back_as_the_events_written(dialect: Dialect) -> None:
    events: dict[EventKind, Event] = {
        "deployment": _deployment("d1", labels={"team": "a"}),
        "change": Change(id="c1", source="git", service="api", committed_at=T0, merged_at=T0, url="https://x/c1"),
        "incident": Incident(
            id="i1",
            source="pd",
            service="api",
            environment="production",
            started_at=T0,
            resolved_at=T0 + timedelta(hours=1),
            severity="high",
            caused_by="d1",
            deployment_related=True,
            title="t",
        ),
    }
    conn = sqlite3.connect(":memory:")
    for kind, event in events.items():
        table = {"deployment": "deployments", "change": "changes", "incident": "incidents"}[kind]
        conn.execute(f"CREATE TABLE {table} ({', '.join(name for name, _ in COLUMNS[table])})")
        values = Rows([event], dialect).tables()[0][1]
        conn.execute(f"INSERT INTO {table} VALUES ({SQLITE.marks(len(COLUMNS[table]))})", _as_stored(values[0]))
        (row,) = conn.execute(f"SELECT {SELECTED[kind]} FROM {table}").fetchall()
        if dialect is POSTGRES:  # psycopg hands JSONB back decoded
            row = tuple(json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value for value in row)
        assert event_of(kind, row, dialect) == event


def _as_stored(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(json.dumps(value) if isinstance(value, list | dict) else value for value in row)


def test_rows_keep_what_the_versions_rule_keeps_of_a_key() -> None:
    """An older version later in the batch loses; a version without a time wins but keeps the newest time."""
    older, newer = T0 - timedelta(minutes=1), T0
    events: list[Event] = [
        Incident(id="i1", source="gh", service="api", started_at=T0, resolved_at=T0, updated_at=newer),
        Incident(id="i1", source="gh", service="api", started_at=T0, updated_at=older),  # a replay: loses
        Incident(id="i2", source="gh", service="api", started_at=T0, updated_at=newer),
        Incident(id="i2", source="gh", service="api", started_at=T0, severity="sev1"),  # no time: wins
    ]
    ((_, written),) = Rows(events, SQLITE).tables()
    names = [name for name, _ in COLUMNS["incidents"]]
    by_id = {row[1]: dict(zip(names, row, strict=True)) for row in written}
    assert by_id["i1"]["resolved_at"] == by_id["i1"]["updated_at"] == 1_772_452_800_000_000  # T0 in microseconds
    assert by_id["i2"]["severity"] == "sev1" and by_id["i2"]["updated_at"] == 1_772_452_800_000_000


@pytest.mark.parametrize(
    "value",
    [[], {}, ["c1", "pr:2"], {"team": "core", "rework": "yes"}, ['quote " and \\ back', "é\n\x00"], {"ü": "\t"},
     [1, "mixed"], {"nested": {"a": 1}}, {"n": None}],
)  # fmt: skip
def test_json_text_is_json_dumps(value: object) -> None:
    # The fast path (lists and dicts of strings) and the fallback write exactly what json.dumps writes.
    assert json_text(value) == json.dumps(value)


def test_rows_pause_the_garbage_collector_only_while_they_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from metrichub_core.storage.sql import events

    seen: list[bool] = []

    def to_micros(moment: datetime) -> int:  # called while a row is built
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setattr(events, "to_micros", to_micros)
    change = Change(id="c", source="s", service="api", committed_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert gc.isenabled()
    Rows([change], SQLITE)
    assert seen == [False] and gc.isenabled()
    bad = Change.model_construct(id="bad", source="s", service="api", committed_at=None)  # type: ignore[arg-type]
    monkeypatch.setattr(events, "to_micros", lambda moment: moment.year)  # None has no year
    with pytest.raises(AttributeError):
        Rows([bad], SQLITE)
    assert gc.isenabled()  # enabled again after a failure
    gc.disable()
    try:
        Rows([change], SQLITE)
        assert not gc.isenabled()  # a caller's own pause is left as it is
    finally:
        gc.enable()
