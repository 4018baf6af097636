"""Keeping the derived DORA data right, per batch and set-based, as SQLite does.

Each upsert, in its own transaction and after taking ``DORA_LOCK``, writes its events
(``_batch.upsert``, which returns the versions they replaced) and ``derive``s them: it
recomputes what the batch can have changed (the lead rows of the changes they name, before
and after, the day and month rollups those rows and the deployments fall in, and the links
of the incidents whose attribution or fix they can move). Every statement takes the keys as
arrays, so a derivation costs a fixed number of round trips whatever the batch's size. A
queue (``dora_pending``) left by an older MetricHub, which queued a row per batch and
derived lazily, is applied by ``refresh`` before the next DORA query under the same lock; a
very long one by rebuilding everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from metrichub_core.storage.sql.dialect import POSTGRES
from metrichub_core.storage.sql.dora import (
    DEPLOY_DAY_COLUMNS,
    LINK_COLUMNS,
    incident_days_sql,
    lead_day_aggregates,
    leads_sql,
    link_sql,
)
from metrichub_core.storage.sql.rollups import DAY_US, day_of, month_days, month_of
from metrichub_core.storage.sql.stages import EVERY_STAGE, stage_days_sql
from metrichub_plugin_postgres._batch import Version, Written
from metrichub_plugin_postgres._dora_schema import REBUILD

__all__ = ["QUEUE_SQL", "REBUILD_AT", "derive", "refresh"]

Connection = AsyncConnection[TupleRow]


def _columns(rows: Iterable[Sequence[Any]], width: int) -> list[str]:
    """The parameter of one ``_unnest``: the rows (of ``width`` values) as one JSON array of arrays.

    Python's C encoder and the server's JSONB parser move a batch's keys far faster than
    adapting them value by value.
    """
    return [json.dumps(rows if isinstance(rows, list) else list(rows))]  # tuples encode as arrays


# Every statement below reaches rows through a LATERAL subquery keyed by the batch's
# rows, fenced with OFFSET 0 so that it is not flattened into a join: PostgreSQL must
# then probe an index once per key (a nested loop), whatever its row estimates,
# instead of hashing the keys and scanning a growing table.


def _unnest(columns: str, types: str) -> str:
    """The rows of one JSON parameter (see ``_columns``) as a relation ``k (columns)``."""
    fields = ", ".join(
        f"(e->>{index})::{kind} AS {name}"
        for index, (name, kind) in enumerate(zip(columns.split(", "), types.split(), strict=True))
    )
    return f"(SELECT {fields} FROM jsonb_array_elements(%s::jsonb) AS e) AS k"


def _delete(table: str, keys: str, match: str, returning: str = "") -> str:
    """Delete the rows of ``table`` matching ``keys`` (found one key at a time)."""
    return (
        f"DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT x.ctid FROM {keys} "
        f"CROSS JOIN LATERAL (SELECT t.ctid FROM {table} t WHERE {match} OFFSET 0) x))"
        + (f" RETURNING {returning}" if returning else "")
    )


_DEPLOYMENT_KEYS = _unnest("source, id", "text text")
_OF_KEYS = "CROSS JOIN LATERAL (SELECT * FROM deployments d WHERE d.source = k.source AND d.id = k.id OFFSET 0) d"

_LEAD_KEYS = _unnest("service, environment, change_id", "text text text")

_DAY_KEYS = _unnest("service, environment, day", "text text int4")
_DAY_MATCH = "t.service = k.service AND t.environment = k.environment AND t.day = k.day"
_ENV_DAY_KEYS = _unnest("environment, day", "text int4")
_ALL_MATCH = "t.service = '' AND t.environment = k.environment AND t.day = k.day"
_MONTH_KEYS = _unnest("service, environment, month, first, stop", "text text int4 int4 int4")

_RELINKED = f"""
    SELECT i.* FROM {_unnest("source, id", "text text")}
        CROSS JOIN LATERAL (SELECT * FROM incidents i WHERE i.source = k.source AND i.id = k.id OFFSET 0) i
    UNION
    SELECT i.* FROM {_unnest("service, environment, since", "text text int8")}
        CROSS JOIN LATERAL (
            SELECT * FROM incidents i WHERE i.service = k.service AND i.environment = k.environment
               AND i.started_at > k.since OFFSET 0
        ) i
    UNION
    SELECT i.* FROM {_unnest("service, environment, since", "text text int8")}
        CROSS JOIN LATERAL (
            SELECT * FROM incidents i WHERE i.service = k.service AND i.environment = k.environment
               AND i.resolved_at >= k.since OFFSET 0
        ) i
    UNION
    SELECT i.* FROM {_unnest("service, id", "text text")}
        CROSS JOIN LATERAL (SELECT * FROM incidents i WHERE i.service = k.service AND i.caused_by = k.id OFFSET 0) i
"""
_TOUCHED_LINK = "service, environment, started_at, cause_env, cause_at, fix_at"
_LINK_UPDATES = ", ".join(f"{column} = excluded.{column}" for column in LINK_COLUMNS[2:])
RELINK_SQL = f"""
WITH i AS MATERIALIZED ({_RELINKED}),
old AS (
    SELECT l.{_TOUCHED_LINK.replace(", ", ", l.")} FROM i CROSS JOIN LATERAL (
        SELECT * FROM dora_incident_links l WHERE l.inc_source = i.source AND l.inc_id = i.id OFFSET 0
    ) l
),
new AS (
    INSERT INTO dora_incident_links {link_sql(POSTGRES, "i")}
    ON CONFLICT (inc_source, inc_id) DO UPDATE SET {_LINK_UPDATES}
    RETURNING {_TOUCHED_LINK}
)
SELECT * FROM old UNION ALL SELECT * FROM new
"""
"""Relink the incidents named by key, in a scope since a time, or naming a deployment; return
the links they had and have (``_TOUCHED_LINK``), whose days must be recounted."""


async def derive(conn: Connection, written: Written) -> None:
    """Derive what an upsert wrote (``_batch.upsert``), in its transaction (``refresh`` does the same for a queue)."""
    await _derive(conn, written.old, written.current, sorted(written.changes), written.incidents)


QUEUE_SQL = (
    "INSERT INTO dora_pending (old, deployments, changes, incidents) SELECT coalesce(("
    "SELECT jsonb_agg(jsonb_build_array(d.service, d.environment, d.listed_at, d.change_ids, d.id, d.source, "
    "d.status)) "
    f"FROM {_DEPLOYMENT_KEYS} {_OF_KEYS}), '[]'), %s::jsonb, coalesce(("
    "SELECT jsonb_agg(jsonb_build_array(k.source, k.id, c.service)) "
    f"FROM {_unnest('source, id', 'text text')} LEFT JOIN LATERAL ("
    "SELECT service FROM changes c WHERE c.source = k.source AND c.id = k.id OFFSET 0) c ON true), '[]'), %s::jsonb"
)
"""A queue row as the releases that derived lazily wrote it before a batch (``refresh`` reads it): the
replaced deployment versions (as ``Version``s), then the batch's keys. Parameters: the deployments'
keys twice (once to find the stored versions), the changes' keys (each then comes with its stored
service, ``null`` if new: its lead moves out of that service), the incidents' keys."""

REBUILD_AT = 10_000
"""A queue naming more keys than this, and more than a quarter of the events stored, is
applied by rebuilding everything (``REBUILD``): after a bulk load that is several times
faster than deriving key by key."""


async def refresh(conn: Connection) -> int:
    """Apply a queue left by a release that derived lazily (in a transaction holding ``DORA_LOCK``);
    return how many keys it named.

    Recomputes, set-based, what the queued batches can have changed: the stored versions
    they replaced are undone and the current versions of their keys derived; a key queued
    by several batches is derived once.
    """
    cursor = await conn.execute("SELECT id, old, deployments, changes, incidents FROM dora_pending ORDER BY id")
    queued = await cursor.fetchall()
    if not queued:
        return 0
    old: list[Version] = [tuple(version) for row in queued for version in row[1]]
    deployments = sorted({(key[0], key[1]) for row in queued for key in row[2]})
    changes = sorted({(key[0], key[1]) for row in queued for key in row[3]})
    # (service, id) of the stored versions the queued changes replaced (older queue rows lack them).
    moved = {(key[2], key[1]) for row in queued for key in row[3] if len(key) > 2 and key[2] is not None}
    incidents = sorted({(key[0], key[1]) for row in queued for key in row[4]})
    count = len(deployments) + len(changes) + len(incidents)
    if count > REBUILD_AT and count * 4 > await _stored(conn):
        for statement in REBUILD:
            await conn.execute(statement)
        return count
    await _apply(conn, old, deployments, changes, moved, incidents)
    await conn.execute("DELETE FROM dora_pending WHERE id <= %s", (queued[-1][0],))
    return count


async def _apply(
    conn: Connection,
    old: list[Version],
    deployments: list[tuple[str, str]],
    changes: list[tuple[str, str]],
    moved: set[tuple[str, str]],
    incidents: list[tuple[str, str]],
) -> None:
    """Derive the keys (source, id) written, given the ``old`` deployment versions and the (service,
    id) of the changes they replaced (``moved``)."""
    current = await _versions(conn, deployments)
    await _derive(conn, old, current, sorted(moved.union(await _services(conn, changes))), incidents)


async def _versions(conn: Connection, keys: list[tuple[str, str]]) -> list[Version]:
    """The stored versions of the deployments of ``keys`` (source, id)."""
    if not keys:
        return []
    cursor = await conn.execute(
        "SELECT d.service, d.environment, d.listed_at, d.change_ids, d.id, d.source, d.status "
        f"FROM {_DEPLOYMENT_KEYS} {_OF_KEYS}",
        _columns(keys, 2),
    )
    return [tuple(row) for row in await cursor.fetchall()]


async def _services(conn: Connection, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(service, id)`` of the stored changes of ``keys`` (source, id)."""
    if not keys:
        return []
    cursor = await conn.execute(
        f"SELECT c.service, c.id FROM {_unnest('source, id', 'text text')} CROSS JOIN LATERAL ("
        "SELECT service, id FROM changes c WHERE c.source = k.source AND c.id = k.id OFFSET 0) c",
        _columns(keys, 2),
    )
    return [(service, id_) for service, id_ in await cursor.fetchall()]


async def _stored(conn: Connection) -> int:
    """The planner's estimate of how many events are stored (0 before the first ANALYZE)."""
    cursor = await conn.execute(
        "SELECT coalesce(sum(greatest(reltuples, 0)), 0)::int8 FROM pg_class "
        "WHERE oid IN (to_regclass('deployments'), to_regclass('changes'), to_regclass('incidents'))"
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _derive(
    conn: Connection,
    old: list[Version],
    current: list[Version],
    changes: list[tuple[str, str]],
    incidents: list[tuple[str, str]],
) -> None:
    """Undo the ``old`` deployment versions, derive the ``current`` ones, and recompute what they
    and the changes (service, id) and incidents (source, id) can have changed."""
    lead_keys: set[tuple[str, str, str]] = set()
    deploy_days: set[tuple[str, str, int]] = set()
    relink_from: dict[tuple[str, str], int] = {}
    named: set[tuple[str, str]] = set()
    gone: list[tuple[str, str, str, int, str, str]] = []  # ship rows of the replaced versions
    ships: list[tuple[str, str, str, int, str, str]] = []  # ship rows of the new versions
    versions = [(row, gone) for row in old] + [(row, ships) for row in current]
    for (service, environment, micros, change_ids, id_, source, status), rows in versions:
        if status == "success":
            for change_id in dict.fromkeys(change_ids):
                lead_keys.add((service, environment, change_id))
                rows.append((service, change_id, environment, micros, source, id_))
        deploy_days.add((service, environment, day_of(micros)))
        scope = (service, environment)
        relink_from[scope] = min(relink_from.get(scope, micros), micros)
        named.add((service, id_))

    ship_keys = _unnest("service, change_id, environment, listed_at, source, id", "text text text int8 text text")
    if gone:
        match = (
            "t.service = k.service AND t.change_id = k.change_id AND t.environment = k.environment "
            "AND t.listed_at = k.listed_at AND t.dep_source = k.source AND t.dep_id = k.id"
        )
        await conn.execute(_delete("dora_ships", ship_keys, match), _columns(gone, 6))
    if ships:
        await conn.execute(f"INSERT INTO dora_ships SELECT * FROM {ship_keys}", _columns(ships, 6))
    if changes:
        cursor = await conn.execute(
            "SELECT DISTINCT k.service, s.environment, k.change_id "
            f"FROM {_unnest('service, change_id', 'text text')} CROSS JOIN LATERAL ("
            "SELECT DISTINCT environment FROM dora_ships s WHERE s.service = k.service "
            "AND s.change_id = k.change_id) s",
            _columns(changes, 2),
        )
        lead_keys.update(await cursor.fetchall())

    lead_days = await _relead(conn, sorted(lead_keys)) if lead_keys else set()
    if lead_days:
        async with conn.pipeline():  # statements whose results nothing waits for: one round trip
            await _recount(conn, lead_days, _LEAD_DAYS_ROLLUP)
            await _recount(conn, lead_days, _STAGE_DAYS)

    incident_days: set[tuple[str, str, int]] = set()
    if incidents or relink_from or named:
        cursor = await conn.execute(
            RELINK_SQL,
            [
                *_columns(incidents, 2),
                *_columns(((s, e, since) for (s, e), since in relink_from.items()), 3) * 2,
                *_columns(named, 2),
            ],
        )
        # The days of the incidents, and of the deployments that caused or fixed them, before and after.
        for service, environment, started, cause_env, cause_at, fix_at in await cursor.fetchall():
            incident_days.add((service, environment, day_of(started)))
            if cause_at is not None:
                deploy_days.add((service, cause_env, day_of(cause_at)))
            if fix_at is not None:
                deploy_days.add((service, environment, day_of(fix_at)))
    if deploy_days or incident_days:  # (an empty pipeline would still cost a round trip)
        async with conn.pipeline():
            await _recount(conn, deploy_days, _DEPLOY_DAYS)
            await _recount(conn, incident_days, _INCIDENT_DAYS)


async def _relead(conn: Connection, keys: list[tuple[str, str, str]]) -> set[tuple[str, str, int]]:
    """Recompute the lead rows of ``keys`` (with their lead-time breakdown); return the (service,
    environment, day)s they left or entered."""
    arrays = _columns(keys, 3)
    async with conn.pipeline():
        removed = await conn.execute(_UNLEAD_SQL, arrays)
        added = await conn.execute(_LEAD_SQL, arrays)
        return {
            (service, environment, day)
            for service, environment, day in [*await removed.fetchall(), *await added.fetchall()]
        }


_LEAD_DAYS = f"SELECT DISTINCT service, environment, {POSTGRES.day('deployed_at')} FROM"
_LEAD_MATCH = "t.service = k.service AND t.environment = k.environment AND t.change_id = k.change_id"
_UNLEAD_SQL = f"""
WITH leads AS ({_delete("dora_leads", _LEAD_KEYS, _LEAD_MATCH, "service, environment, deployed_at")})
{_LEAD_DAYS} leads
"""
"""Delete the lead rows of the keys (service, environment, change_id); return the days they were in."""
_LEAD_SQL = f"""
WITH leads AS (INSERT INTO dora_leads {leads_sql(POSTGRES, _LEAD_KEYS)} RETURNING service, environment, deployed_at)
{_LEAD_DAYS} leads
"""
"""Derive the lead rows of the keys (with their lead-time breakdown); return the days they are in."""


def _month_keys(days: set[tuple[str, str, int]]) -> list[str]:
    """The parameter of ``_MONTH_KEYS``: the months of ``days`` (with their first and end days), and of all services."""
    months = {(service, environment, month_of(day)) for service, environment, day in days}
    months |= {("", environment, month) for _, environment, month in months}
    return _columns(
        sorted((service, environment, month, *month_days(month)) for service, environment, month in months), 5
    )


@dataclass(frozen=True)
class _Rollup:
    """A day rollup table (and its month table) recounted for the (service, environment, day)s a batch touched.

    ``group``: its key columns after ``service``, in table order (``day`` among them); ``sums``:
    how its all-services and month rows add its rows up; ``rows``: the INSERT of its per-service
    rows of the days of ``_DAY_KEYS`` (its one parameter); ``only``: a condition on its rows that
    names every row but lets an index on its leading key columns find them.
    """

    table: str
    group: tuple[str, ...]
    sums: str
    rows: str
    only: str = ""
    months: str | None = None


async def _recount(conn: Connection, days: set[tuple[str, str, int]], rollup: _Rollup) -> None:
    """Recount ``rollup``'s rows of ``days``, their all-services rows, and their months."""
    if not days:  # a write that touched none (a change not shipped yet) sends nothing
        return
    table, only = rollup.table, f" AND t.{rollup.only}" if rollup.only else ""
    arrays = _columns(sorted(days), 3)
    await conn.execute(_delete(table, _DAY_KEYS, _DAY_MATCH + only), arrays)
    await conn.execute(rollup.rows, arrays)
    every = _columns(sorted({(environment, day) for _, environment, day in days}), 2)
    await conn.execute(_delete(table, _ENV_DAY_KEYS, _ALL_MATCH + only), every)
    group = ", ".join(f"k.{column}" if column in ("environment", "day") else f"t.{column}" for column in rollup.group)
    await conn.execute(
        f"INSERT INTO {table} SELECT '', {group}, {rollup.sums} FROM {_ENV_DAY_KEYS} CROSS JOIN LATERAL ("
        f"SELECT * FROM {table} t WHERE t.environment = k.environment AND t.day = k.day AND t.service <> ''{only} "
        f"OFFSET 0) t GROUP BY {group}",
        every,
    )
    if rollup.months is None:
        return
    arrays = _month_keys(days)
    match = f"t.service = k.service AND t.environment = k.environment{only} AND t.month = k.month"
    await conn.execute(_delete(rollup.months, _MONTH_KEYS, match), arrays)
    group = group.replace("k.day", "k.month")
    await conn.execute(
        f"INSERT INTO {rollup.months} SELECT k.service, {group}, {rollup.sums} FROM {_MONTH_KEYS} "
        f"CROSS JOIN LATERAL (SELECT * FROM {table} t WHERE t.service = k.service AND t.environment = k.environment"
        f"{only} AND t.day >= k.first AND t.day < k.stop OFFSET 0) t GROUP BY k.service, {group}",
        arrays,
    )


def _of_days(table: str, time: str) -> str:
    """The rows of ``table`` whose ``time`` falls in the days of ``_DAY_KEYS``, each with its ``day``."""
    return (
        f"SELECT k.day, r.* FROM {_DAY_KEYS} CROSS JOIN LATERAL (SELECT * FROM {table} r WHERE r.service = k.service "
        f"AND r.environment = k.environment AND r.{time} >= k.day::int8 * {DAY_US} "
        f"AND r.{time} < (k.day::int8 + 1) * {DAY_US} OFFSET 0) r"
    )


_SUMS = "sum(t.n), sum(t.total), min(t.low), max(t.high)"
_DEPLOY_DAYS = _Rollup(
    "dora_deploy_days",
    ("environment", "day"),
    "sum(t.deployments), sum(t.failures), sum(t.rework), sum(t.failed)",
    f"WITH d AS MATERIALIZED ({_of_days('deployments', 'listed_at')}) INSERT INTO dora_deploy_days "
    f"SELECT d.service, d.environment, d.day, {DEPLOY_DAY_COLUMNS} FROM d GROUP BY d.service, d.environment, d.day",
)
_INCIDENT_DAYS = _Rollup(
    "dora_incident_days",
    ("environment", "day", "kind", "bucket"),
    _SUMS,
    f"WITH l AS MATERIALIZED ({_of_days('dora_incident_links', 'started_at')}) INSERT INTO dora_incident_days "
    + " UNION ALL ".join(incident_days_sql(POSTGRES, "l WHERE true", "l.day")),
)
_LEAD_DAYS_ROLLUP = _Rollup(
    "dora_lead_days",
    ("environment", "day", "bucket"),
    _SUMS,
    f"WITH l AS MATERIALIZED ({_of_days('dora_leads', 'deployed_at')}) INSERT INTO dora_lead_days "
    f"SELECT l.service, l.environment, l.day, {lead_day_aggregates(POSTGRES)} FROM l GROUP BY 1, 2, 3, 4",
    months="dora_lead_months",
)
_STAGE_DAYS = _Rollup(
    "dora_stage_days",
    ("environment", "stage", "day", "bucket"),
    _SUMS,
    f"WITH s AS MATERIALIZED ({_of_days('dora_leads', 'deployed_at')}) INSERT INTO dora_stage_days "
    + " UNION ALL ".join(stage_days_sql(POSTGRES, "s WHERE true", "s.day")),
    only=EVERY_STAGE,
    months="dora_stage_months",
)
