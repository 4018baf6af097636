"""The rules of the derived DORA tables, as SQL for either dialect.

Each rule is written here once; ``metrichub_core.dora.reference`` is its specification,
and the equivalence tests compare both on every backend.
"""

from __future__ import annotations

from metrichub_core.storage.sql.dialect import Dialect

__all__ = ["LINK_COLUMNS", "link_sql"]

LINK_COLUMNS = (
    "inc_source", "inc_id", "service", "environment", "started_at", "resolved_at", "related", "cause_source",
    "cause_id", "cause_env", "cause_status", "cause_at", "by_time", "fix_source", "fix_id", "fix_at", "fix_labelled",
)  # fmt: skip
"""The columns of ``dora_incident_links``, in table order."""


def link_sql(dialect: Dialect, incidents: str) -> str:
    """The ``dora_incident_links`` rows (``LINK_COLUMNS``) of ``incidents`` (a FROM item aliased ``i``).

    The rule (``reference._link``): a deployment-related incident is attributed to the
    deployment its ``caused_by`` names in its service (a successful one first, then the
    latest), else to the last successful deployment of its service and environment that
    finished strictly before it started (``by_time``). A resolved incident was fixed by the
    first successful deployment after its start, if that finished by its resolution.

    The timeline lookups order by the whole ``deployments_by_scope`` key (service and
    environment are fixed by the WHERE clause, so the order is the same), which only that
    index provides: with ``LIMIT 1`` a planner could otherwise walk the time index
    backwards through every other service's deployments.
    """
    named = dialect.first_row(
        "n",
        "deployments",
        "i.deployment_related AND d.service = i.service AND d.id = i.caused_by",
        "d.status = 'success' DESC, d.listed_at DESC, d.source DESC, d.id DESC",
    )
    by_time = dialect.first_row(
        "t",
        "deployments",
        "i.deployment_related AND n.id IS NULL AND d.service = i.service AND d.environment = i.environment "
        "AND d.status = 'success' AND d.listed_at < i.started_at",
        "d.service DESC, d.environment DESC, d.listed_at DESC, d.source DESC, d.id DESC",
    )
    fix = dialect.first_row(
        "f",
        "deployments",
        "i.resolved_at IS NOT NULL AND d.service = i.service AND d.environment = i.environment "
        "AND d.status = 'success' AND d.listed_at > i.started_at",
        "d.service, d.environment, d.listed_at, d.source, d.id",
        also="f.listed_at <= i.resolved_at",
    )
    return f"""
SELECT i.source, i.id, i.service, i.environment, i.started_at, i.resolved_at, i.deployment_related,
       coalesce(n.source, t.source), coalesce(n.id, t.id), coalesce(n.environment, t.environment),
       coalesce(n.status, t.status), coalesce(n.listed_at, t.listed_at),
       n.id IS NULL AND t.id IS NOT NULL, f.source, f.id, f.listed_at, coalesce(f.rework, false)
FROM {incidents}
{named}
{by_time}
{fix}
"""
