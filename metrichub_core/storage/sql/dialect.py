"""Where SQLite and PostgreSQL differ, and nowhere else: placeholders, types, JSON, batch upserts.

Every SQL text of the kit is written once and takes a ``Dialect`` for these parts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from metrichub_core.dora import BUCKET_FLOOR_SECONDS, GAMMA

__all__ = ["DAY_US", "POSTGRES", "SQLITE", "ColumnKind", "Dialect", "json_text"]

ColumnKind = Literal["text", "int8", "jsonb", "bool"]
"""The kind of an event column; each dialect names its own type for it."""


@dataclass(frozen=True)
class Dialect:
    """One database's spelling of the kit's SQL.

    ``mark`` is the parameter placeholder; ``integer``/``real`` the types of counts and
    seconds in rollups, ``suffix`` what ends a derived table's ``CREATE TABLE``;
    ``types`` the column type of each ``ColumnKind`` where a batch is decoded in SQL.
    ``json_as_text``: JSON values travel as text (encoded by Python, decoded from rows)
    rather than natively.
    """

    name: str
    mark: str
    integer: str
    real: str
    suffix: str
    types: Mapping[ColumnKind, str]
    json_as_text: bool

    @property
    def fence(self) -> str:
        """What ends a subquery the planner must run once, not inline into its outer query.

        Both planners would otherwise repeat a scalar subquery of its select list at every
        reference to that column (an OFFSET keeps either from flattening the subquery).
        """
        return " LIMIT -1 OFFSET 0" if self.json_as_text else " OFFSET 0"

    def marks(self, count: int) -> str:
        """``count`` placeholders, comma-separated."""
        return ", ".join([self.mark] * count)

    def encode_json(self) -> Callable[[Any], Any]:
        """How a JSON value (list, dict) is passed as a parameter."""
        return json_text if self.json_as_text else _same

    def decode_json(self) -> Callable[[Any], Any]:
        """How a JSON column's value read back becomes a list or dict."""
        return json.loads if self.json_as_text else _same

    def labels(self, labels: Mapping[str, str], column: str = "labels") -> tuple[list[str], list[Any]]:
        """Clauses and parameters matching rows whose JSON ``column`` holds every label."""
        if self.json_as_text:
            params: list[Any] = []
            for key, value in labels.items():
                params += [f'$."{key}"', value]
            return [f"json_extract({column}, {self.mark}) = {self.mark}"] * len(labels), params
        return [f"{column} @> {self.mark}::jsonb"], [json.dumps(dict(labels))]

    def typed(self, expression: str, kind: ColumnKind) -> str:
        """``expression`` cast to ``kind`` where the database must know a parameter's type (PostgreSQL)."""
        return expression if self.json_as_text else f"{expression}::{self.types[kind]}"

    def seconds(self, micros: str) -> str:
        """SQL for the seconds (a double) of an integer number of microseconds."""
        if self.json_as_text:
            return f"(({micros}) / 1e6)"
        return f"(({micros})::float8 / 1000000::float8)"

    def bucket(self, seconds: str) -> str:
        """SQL for ``metrichub_core.dora.bucket_of(seconds)``, bit for bit: both databases compute it
        with the same libm ``log`` on the same doubles. (SQLite's ``ln`` is a C function, three times
        faster than calling ``bucket_of`` back in Python for every row of a backfill; where SQLite
        was built without its math functions the backend registers ``math.log`` as ``ln``.)
        """
        if self.json_as_text:  # CAST truncates as int() does (the logarithm is not negative here)
            index = f"CAST(ln({seconds} / {_FLOOR}) / {_LOG_GAMMA} AS INTEGER)"
            return f"(CASE WHEN {seconds} < {_FLOOR} THEN 0 ELSE 1 + {index} END)"
        floor, log_gamma = f"{_FLOOR}::float8", f"{_LOG_GAMMA}::float8"
        return f"(CASE WHEN {seconds} < {floor} THEN 0 ELSE 1 + floor(ln({seconds} / {floor}) / {log_gamma})::int END)"

    def day(self, micros: str) -> str:
        """SQL for the UTC day number of ``micros`` (floor division, as ``rollups.day_of``)."""
        day = f"(CASE WHEN {micros} >= 0 THEN {micros} / {DAY_US} ELSE -((-{micros} - 1) / {DAY_US}) - 1 END)"
        return day if self.json_as_text else f"{day}::int"

    def month(self, day: str) -> str:
        """SQL for the month number (``rollups.month_of``) of a day number.

        SQLite calls ``month_of`` itself (registered as ``dora_month``).
        """
        if self.json_as_text:
            return f"dora_month({day})"
        moment = f"(DATE '1970-01-01' + {day})"
        return f"(extract(year FROM {moment})::int * 12 + extract(month FROM {moment})::int - 1)"

    def json_elements(self, array: str) -> str:
        """A FROM item of the text elements of a JSON array, as column ``value``."""
        return f"json_each({array})" if self.json_as_text else f"jsonb_array_elements_text({array})"

    def indexed_by(self, index: str) -> str:
        """SQLite's ``INDEXED BY`` hint where its planner needs one (PostgreSQL's does not)."""
        return f" INDEXED BY {index}" if self.json_as_text else ""

    def empty(self, tables: Sequence[str]) -> list[str]:
        """Statements that delete every row of ``tables``."""
        if self.json_as_text:
            return [f"DELETE FROM {table}" for table in tables]
        return [f"TRUNCATE {', '.join(tables)}"]

    def first_row(self, alias: str, table: str, index: str, where: str, order: str, *, also: str = "") -> str:
        """A ``LEFT JOIN`` of ``table`` as ``alias``: its first row (by ``order``) of those that ``where``
        selects (aliased ``d`` there, and free to name earlier FROM items), or NULLs; ``also``
        adds a condition on the row found.

        PostgreSQL joins a ``LATERAL`` subquery; SQLite, which has none, joins the table on the
        rowid of that row, found by a correlated subquery through ``index``. Either way one index
        probe per row. (Without statistics, as while a backfill grows the tables, SQLite's planner
        would otherwise pick a shorter index and scan a whole service's rows for each probe.)
        """
        if self.json_as_text:
            found = f"(SELECT d.rowid FROM {table} d INDEXED BY {index} WHERE {where} ORDER BY {order} LIMIT 1)"
            return f"LEFT JOIN {table} {alias} ON {alias}.rowid = {found}" + (f" AND {also}" if also else "")
        return (
            f"LEFT JOIN LATERAL (SELECT * FROM {table} d WHERE {where} ORDER BY {order} LIMIT 1) {alias} "
            f"ON {also or 'true'}"
        )

    def on_conflict(
        self, table: str, columns: Sequence[tuple[str, ColumnKind]], key: Sequence[str], *, version: str | None = None
    ) -> str:
        """The ``ON CONFLICT`` clause of ``upsert``: a row of the same ``key`` is replaced by the
        incoming one. With a ``version`` column, the rule of ``metrichub_core.storage.versions``:
        a row older than the stored one is not written, and a null version keeps the stored one."""
        updates = ", ".join(
            f"{name} = coalesce(excluded.{name}, {table}.{name})" if name == version else f"{name} = excluded.{name}"
            for name, _ in columns
            if name not in key
        )
        conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        if version is None:
            return conflict
        stored, incoming = f"{table}.{version}", f"excluded.{version}"
        return f"{conflict} WHERE {incoming} IS NULL OR {stored} IS NULL OR {incoming} >= {stored}"

    def upsert(
        self,
        table: str,
        columns: Sequence[tuple[str, ColumnKind]],
        key: Sequence[str],
        *,
        batch: bool = False,
        version: str | None = None,
    ) -> str:
        """The statement writing rows of ``columns`` into ``table``, replacing those of the same ``key``.

        It takes one row of parameters, except a ``batch`` upsert on PostgreSQL: that takes
        a whole batch as one JSON array of row objects, decoded by the server's
        ``json_to_recordset`` (far cheaper than adapting each value, and nested JSON values
        need no second encoding). SQLite runs one row per execution (``executemany``).
        With a ``version`` column, the rule of ``metrichub_core.storage.versions`` (``on_conflict``).
        """
        names = ", ".join(name for name, _ in columns)
        conflict = self.on_conflict(table, columns, key, version=version)
        if self.json_as_text or not batch:
            return f"INSERT INTO {table} ({names}) VALUES ({self.marks(len(columns))}) {conflict}"
        types = ", ".join(f"{name} {self.types[kind]}" for name, kind in columns)
        return (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM json_to_recordset({self.mark}::json) "
            f"AS batch ({types}) {conflict}"
        )


_LOG_GAMMA = repr(math.log(GAMMA))
_FLOOR = repr(BUCKET_FLOOR_SECONDS)
DAY_US = 86_400_000_000
"""Microseconds in a UTC day: times are stored as microseconds since the Unix epoch."""


def _same(value: Any) -> Any:
    return value


_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


def json_text(value: Any) -> str:
    """``json.dumps(value)``, twice as fast for what events hold: lists of strings, dicts of strings.

    (A backfill encodes two per deployment; ``json.dumps`` spends most of its time setting up.)
    """
    if type(value) is list and all(type(item) is str for item in value):
        return "[" + ", ".join(map(_string, value)) + "]"
    if type(value) is dict and all(type(key) is str and type(item) is str for key, item in value.items()):
        return "{" + ", ".join([_string(key) + ": " + _string(item) for key, item in value.items()]) + "}"
    return json.dumps(value)


SQLITE = Dialect(
    name="sqlite",
    mark="?",
    integer="INTEGER",
    real="REAL",
    suffix=" WITHOUT ROWID",
    types={"text": "TEXT", "int8": "INTEGER", "jsonb": "TEXT", "bool": "INTEGER"},
    json_as_text=True,
)
POSTGRES = Dialect(
    name="postgresql",
    mark="%s",
    integer="BIGINT",
    real="FLOAT8",
    suffix="",
    types={"text": "text", "int8": "int8", "jsonb": "jsonb", "bool": "bool"},
    json_as_text=False,
)
