"""The rules of the derived DORA tables, as SQL for either dialect.

Each rule is written here once; ``metrichub_core.dora.reference`` is its specification,
and the equivalence tests compare both on every backend.
"""

from __future__ import annotations

from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.stages import earliest_merge, stage_columns

__all__ = [
    "CAUSED_FAILURE",
    "DEPLOY_DAY_COLUMNS",
    "FIXED",
    "INCIDENT_COUNTS",
    "LINKS_NAMED_DDL",
    "LINK_COLUMNS",
    "RESOLVED",
    "SHIPS_AND_LEADS_DDL",
    "incident_days_sql",
    "incident_kinds",
    "lead_day_aggregates",
    "leads_sql",
    "link_sql",
    "rebuild_sql",
    "ships_sql",
]

LINK_COLUMNS = (
    "inc_source", "inc_id", "service", "environment", "started_at", "resolved_at", "related", "cause_source",
    "cause_id", "cause_env", "cause_status", "cause_at", "by_time", "fix_source", "fix_id", "fix_at", "fix_labelled",
    "named", "named_fail_source", "named_fail_id", "named_fail_at",
)  # fmt: skip
"""The columns of ``dora_incident_links``, in table order (the last four since migration 5)."""


def link_sql(dialect: Dialect, incidents: str) -> str:
    """The ``dora_incident_links`` rows (``LINK_COLUMNS``) of ``incidents`` (a FROM item aliased ``i``).

    The rule (``reference._link``): a deployment-related incident is attributed to the
    latest successful deployment (by time, source, id) that its ``caused_by`` names in its
    service and environment, else to the last successful deployment of its service and
    environment that finished strictly before it started (``by_time``): the ``cause``
    columns, its deployment under the default options. ``named`` says it is deployment-related
    and has a ``caused_by``; ``named_fail_*`` is the ``failure`` deployment its ``caused_by``
    names there when that is later than any successful one, its deployment under
    ``failed_deployments_count`` (read by ``link_facts``). A resolved incident was fixed by
    the first successful deployment after its start, if that finished by its resolution.

    The timeline lookups order by the whole ``deployments_by_scope`` key (service and
    environment are fixed by the WHERE clause, so the order is the same), which only that
    index provides: with ``LIMIT 1`` a planner could otherwise walk the time index
    backwards through every other service's deployments.
    """
    names = "i.deployment_related AND d.service = i.service AND d.id = i.caused_by AND d.environment = i.environment"
    named = dialect.first_row(
        "n",
        "deployments",
        "deployments_by_service_id",
        f"{names} AND d.status = 'success'",
        "d.listed_at DESC, d.source DESC, d.id DESC",
    )
    named_failure = dialect.first_row(
        "a",
        "deployments",
        "deployments_by_service_id",
        f"{names} AND d.status = 'failure'",
        "d.listed_at DESC, d.source DESC, d.id DESC",
        also="(n.id IS NULL OR (a.listed_at, a.source, a.id) > (n.listed_at, n.source, n.id))",
    )
    by_time = dialect.first_row(
        "t",
        "deployments",
        "deployments_by_scope",
        "i.deployment_related AND n.id IS NULL AND d.service = i.service AND d.environment = i.environment "
        "AND d.status = 'success' AND d.listed_at < i.started_at",
        "d.service DESC, d.environment DESC, d.listed_at DESC, d.source DESC, d.id DESC",
    )
    fix = dialect.first_row(
        "f",
        "deployments",
        "deployments_by_scope",
        "i.resolved_at IS NOT NULL AND d.service = i.service AND d.environment = i.environment "
        "AND d.status = 'success' AND d.listed_at > i.started_at",
        "d.service, d.environment, d.listed_at, d.source, d.id",
        also="f.listed_at <= i.resolved_at",
    )
    return f"""
SELECT i.source, i.id, i.service, i.environment, i.started_at, i.resolved_at, i.deployment_related,
       coalesce(n.source, t.source), coalesce(n.id, t.id), coalesce(n.environment, t.environment),
       coalesce(n.status, t.status), coalesce(n.listed_at, t.listed_at),
       n.id IS NULL AND t.id IS NOT NULL, f.source, f.id, f.listed_at, coalesce(f.rework, false),
       i.deployment_related AND coalesce(i.caused_by, '') <> '', a.source, a.id, a.listed_at
FROM {incidents}
{named}
{named_failure}
{by_time}
{fix}
"""


SHIPS_AND_LEADS_DDL = """
CREATE TABLE dora_ships (
    service TEXT NOT NULL,
    change_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    listed_at INTEGER NOT NULL,
    dep_source TEXT NOT NULL,
    dep_id TEXT NOT NULL,
    PRIMARY KEY (service, change_id, environment, listed_at, dep_source, dep_id)
) WITHOUT ROWID;
CREATE INDEX dora_ships_by_deployment ON dora_ships (dep_source, dep_id);
CREATE TABLE dora_leads (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    change_id TEXT NOT NULL,
    dep_source TEXT NOT NULL,
    dep_id TEXT NOT NULL,
    deployed_at INTEGER NOT NULL,
    committed_at INTEGER,
    lead_us INTEGER,
    bucket INTEGER NOT NULL,
    PRIMARY KEY (service, environment, change_id)
) WITHOUT ROWID;
CREATE INDEX dora_leads_by_time ON dora_leads (service, environment, deployed_at);
CREATE INDEX dora_leads_by_env_time ON dora_leads (environment, deployed_at)
"""
"""SQLite's ``dora_ships`` and ``dora_leads`` (its migration 4; PostgreSQL's are in its migration 1).

Released: change them by a new migration, never here. SQLite finds the ships of a
deployment by ``dora_ships_by_deployment``; PostgreSQL queues the replaced versions instead.
"""


LINKS_NAMED_DDL = """
ALTER TABLE dora_incident_links ADD COLUMN named {boolean} NOT NULL DEFAULT {false};
ALTER TABLE dora_incident_links ADD COLUMN named_fail_source TEXT{collate};
ALTER TABLE dora_incident_links ADD COLUMN named_fail_id TEXT{collate};
ALTER TABLE dora_incident_links ADD COLUMN named_fail_at {integer}
"""
"""Migration 5 of both backends (format it with the dialect's types): what ``caused_by`` may name
depends on the options (``link_sql``); the derived tables are then rebuilt.

Released: change it by a new migration, never here."""


def ships_sql(dialect: Dialect, deployments: str, *, distinct: bool = True) -> str:
    """``dora_ships`` rows: one per change that a successful deployment of ``deployments`` (aliased ``d``) lists
    (without ``distinct``, a change listed twice gives two: for an insert that ignores duplicate keys)."""
    return (
        f"SELECT{' DISTINCT' if distinct else ''} d.service, j.value, d.environment, d.listed_at, d.source, d.id "
        f"FROM {deployments} CROSS JOIN {dialect.json_elements('d.change_ids')} j WHERE d.status = 'success'"
    )


def leads_sql(dialect: Dialect, keys: str) -> str:
    """``dora_leads`` rows of the lead keys of ``keys`` (a FROM item of ``service, environment,
    change_id`` aliased ``k``) that a successful deployment shipped (a ``dora_ships`` row).

    The rule (``reference.facts_from_events``): a change's lead time in an environment runs
    from its earliest commit (over sources) to the first successful deployment listing it
    there, by (time, source, id); ``-2`` is the bucket of a change that is not stored, ``-1``
    of a negative span. The row ends with its lead-time breakdown (``stages.stage_columns``).

    Each key's first ship is one probe of ``dora_ships``' key, whose order is that of the rule
    (half the time of numbering every ship of the keys in a window sort). SQLite, which has no
    ``LATERAL``, joins the first ship's whole key, found by that probe, as a row value.
    """
    match = "f.service = k.service AND f.change_id = k.change_id AND f.environment = k.environment"
    probe = f"FROM dora_ships f WHERE {match} ORDER BY f.listed_at, f.dep_source, f.dep_id LIMIT 1"
    if dialect.json_as_text:
        key = "{0}.service, {0}.change_id, {0}.environment, {0}.listed_at, {0}.dep_source, {0}.dep_id"
        ships = f"{keys} CROSS JOIN dora_ships s ON ({key.format('s')}) = (SELECT {key.format('f')} {probe})"
    else:
        ships = f"{keys} CROSS JOIN LATERAL (SELECT * {probe}) s"
    committed = (
        f"(SELECT min(c.committed_at) FROM changes c{dialect.indexed_by('changes_by_service_id')} "
        "WHERE c.service = s.service AND c.id = s.change_id)"
    )
    merged = earliest_merge(dialect, "s.service", "s.change_id")
    span = "f.listed_at - f.committed"
    first = "s.service, s.environment, s.change_id, s.dep_source, s.dep_id, s.listed_at"
    return f"""
SELECT f.service, f.environment, f.change_id, f.dep_source, f.dep_id, f.listed_at, f.committed, {span},
       CASE WHEN f.committed IS NULL THEN -2 WHEN f.listed_at < f.committed THEN -1
            ELSE {dialect.bucket(dialect.seconds(span))} END,
       {stage_columns("f.merged", "f.committed", "f.listed_at")}
FROM (SELECT {first}, {committed} AS committed, {merged} AS merged FROM {ships}{dialect.fence}) f
"""


def lead_day_aggregates(dialect: Dialect) -> str:
    """Per bucket: count, sum, min and max of lead seconds (``dora_lead_days``' columns from ``bucket``)."""
    seconds = dialect.seconds("lead_us")
    return f"bucket, count(*), coalesce(sum({seconds}), 0), coalesce(min({seconds}), 0), coalesce(max({seconds}), 0)"


CAUSED_FAILURE = (
    "EXISTS (SELECT 1 FROM dora_incident_links l WHERE l.cause_source = d.source AND l.cause_id = d.id "
    "AND l.environment = d.environment)"
)
"""Whether deployment ``d`` caused a failure: an incident of its environment is attributed to it
(under the default options: any attribution counts)."""
FIXED = "EXISTS (SELECT 1 FROM dora_incident_links l WHERE l.fix_source = d.source AND l.fix_id = d.id)"
"""Whether deployment ``d`` fixed an incident: then it is rework, labelled or not."""
DEPLOY_DAY_COLUMNS = (
    "count(*) FILTER (WHERE d.status = 'success'), count(*) FILTER (WHERE d.status = 'failure'), "
    f"count(*) FILTER (WHERE d.status = 'success' AND (d.rework OR {FIXED})), "
    f"count(*) FILTER (WHERE d.status = 'success' AND {CAUSED_FAILURE})"
)
"""``dora_deploy_days``' counts of the deployments ``d``: successful, ``failure``, rework, caused a failure."""
RESOLVED = "resolved_at IS NOT NULL AND resolved_at >= started_at"
INCIDENT_COUNTS = (
    (1, "resolved_at IS NULL"),
    (2, "resolved_at IS NULL AND cause_at IS NOT NULL"),
    (3, "related AND cause_at IS NULL"),
    (4, "resolved_at < started_at"),
    (5, "named AND (by_time OR cause_at IS NULL)"),
)
"""``dora_incident_days`` of kind ``count``, by bucket: open, open attributed, unattributed, negative,
``caused_by`` naming no deployment that counts (under the default options)."""


def incident_kinds(dialect: Dialect) -> tuple[tuple[str, str, str], ...]:
    """``dora_incident_days``' duration kinds under the default options: (kind, which links, seconds)."""
    seconds = dialect.seconds("resolved_at - started_at")
    return (("restore", RESOLVED, seconds), ("recovery", f"{RESOLVED} AND cause_at IS NOT NULL", seconds))


def incident_days_sql(dialect: Dialect, links: str, day: str) -> list[str]:
    """SELECTs of ``dora_incident_days`` rows of the links of ``links`` (FROM items, the links
    aliased ``l``, then a WHERE clause to extend with AND), at day ``day`` (an expression), one per kind."""
    selects = [
        f"SELECT l.service, l.environment, {day}, '{kind}', {dialect.bucket(seconds)}, count(*), sum({seconds}), "
        f"min({seconds}), max({seconds}) FROM {links} AND {which} GROUP BY 1, 2, 3, 5"
        for kind, which, seconds in incident_kinds(dialect)
    ]
    selects += [
        f"SELECT l.service, l.environment, {day}, 'count', {code}, count(*), 0, 0, 0 FROM {links} AND {which} "
        "GROUP BY 1, 2, 3"
        for code, which in INCIDENT_COUNTS
    ]
    return selects


_SHIPPED = "(SELECT DISTINCT service, change_id, environment FROM dora_ships) k"
"""Every lead key that some successful deployment shipped."""


def rebuild_sql(dialect: Dialect) -> list[str]:
    """Recompute every derived table from the events (in a transaction), and empty the queue."""
    return [
        *dialect.empty(("dora_ships", "dora_leads", "dora_lead_days", "dora_lead_months", "dora_incident_links")),
        f"INSERT INTO dora_ships {ships_sql(dialect, 'deployments d')}",
        f"INSERT INTO dora_leads {leads_sql(dialect, _SHIPPED)}",
        f"INSERT INTO dora_lead_days SELECT service, environment, {dialect.day('deployed_at')}, "
        f"{lead_day_aggregates(dialect)} FROM dora_leads GROUP BY 1, 2, 3, 4",
        "INSERT INTO dora_lead_days SELECT '', environment, day, bucket, sum(n), sum(total), min(low), max(high) "
        "FROM dora_lead_days WHERE service <> '' GROUP BY environment, day, bucket",
        f"INSERT INTO dora_lead_months SELECT service, environment, {dialect.month('day')}, bucket, sum(n), "
        "sum(total), min(low), max(high) FROM dora_lead_days GROUP BY 1, 2, 3, 4",
        f"INSERT INTO dora_incident_links {link_sql(dialect, 'incidents i')}",
        *dialect.empty(("dora_deploy_days", "dora_incident_days", "dora_pending")),
        f"INSERT INTO dora_deploy_days SELECT d.service, d.environment, {dialect.day('d.listed_at')}, "
        f"{DEPLOY_DAY_COLUMNS} FROM deployments d GROUP BY 1, 2, 3",
        "INSERT INTO dora_deploy_days SELECT '', environment, day, sum(deployments), sum(failures), sum(rework), "
        "sum(failed) FROM dora_deploy_days WHERE service <> '' GROUP BY environment, day",
        *(
            f"INSERT INTO dora_incident_days {select}"
            for select in incident_days_sql(dialect, "dora_incident_links l WHERE true", dialect.day("started_at"))
        ),
        "INSERT INTO dora_incident_days SELECT '', environment, day, kind, bucket, sum(n), sum(total), min(low), "
        "max(high) FROM dora_incident_days WHERE service <> '' GROUP BY environment, day, kind, bucket",
    ]
