"""The events a labelled report depends on, read from the derived tables and bounded by its time.

A label filter cannot use the rollups (they sum every label). Loading the scope's whole
history for the reference rules would make a report's cost grow with the years stored;
instead ``window_events`` asks for exactly what the windows' figures depend on, and
builds the reference's ``ScopeEvents`` from it, so that ``reference.facts_of`` computes
the facts by the reference's own rules:

- the scope's successful and ``failure`` deployments deployed in ``[since, until)`` of
  the request (their labels, not their ``change_ids``: one huge deployment costs nothing here);
- the lead rows (``dora_leads``) whose first shipping deployment is among them, which give
  each change's first shipment and earliest commit, however long before it was listed, with
  its earliest merge (the lead-time breakdown);
- the incident links (``dora_incident_links``) that started in the range, or whose
  deployment or fix is in it, with the labels of the deployment they are attributed to
  (which may lie before the range: the previous deployment bounds an incident's attribution);
- whether the scope has any incident at all.

The derived tables must be up to date (an empty ``dora_pending``) when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from metrichub_core.dora import FactsRequest
from metrichub_core.dora.reference import Link, ScopeEvents, deployed_order
from metrichub_core.models import Change, Deployment, DeploymentStatus, Incident
from metrichub_core.storage.sql.dialect import Dialect
from metrichub_core.storage.sql.facts import Ask, between
from metrichub_core.storage.sql.paging import from_micros, optional_moment, to_micros
from metrichub_core.storage.sql.rollups import ScopeSQL
from metrichub_core.storage.sql.stages import earliest_merge

__all__ = ["window_events"]

Key = tuple[str, str]

_DEPLOYMENTS = "SELECT source, id, service, environment, status, started_at, finished_at, labels FROM deployments"
_LINKS = (
    "SELECT l.inc_source, l.inc_id, l.service, l.environment, l.started_at, l.resolved_at, l.related, i.caused_by, "
    "l.cause_source, l.cause_id, l.cause_at, l.by_time, c.labels, l.fix_source, l.fix_id, "
    "l.named_fail_source, l.named_fail_id, l.named_fail_at, a.labels "
    "FROM (SELECT * FROM dora_incident_links WHERE {where}) AS l "
    "JOIN incidents i ON i.source = l.inc_source AND i.id = l.inc_id "
    "LEFT JOIN deployments c ON c.source = l.cause_source AND c.id = l.cause_id "
    "LEFT JOIN deployments a ON a.source = l.named_fail_source AND a.id = l.named_fail_id"
)


def window_events(dialect: Dialect, request: FactsRequest) -> Ask[ScopeEvents]:
    """The ``ScopeEvents`` that give ``request``'s windows the reference's facts (see the module)."""
    decode = dialect.decode_json()
    scope = ScopeSQL.of(request.scope, dialect.mark)
    since = to_micros(min(window.since for window in request.windows))
    until = to_micros(max(window.until for window in request.windows))

    where, params = between(dialect, scope, "listed_at", since, until)
    rows = yield f"{_DEPLOYMENTS} WHERE {where} AND status IN ('success', 'failure')", params
    deployments = {(row[0], row[1]): _deployment(row, decode) for row in rows}

    first_ship: dict[Key, Deployment] = {}
    earliest: dict[Key, Change] = {}
    merged: dict[Key, datetime] = {}
    where, params = between(dialect, scope, "deployed_at", since, until)
    merge = earliest_merge(dialect, "l.service", "l.change_id")
    sql = f"SELECT service, change_id, dep_source, dep_id, committed_at, {merge} FROM dora_leads l WHERE {where}"
    for service, change_id, dep_source, dep_id, committed_at, merged_at in (yield sql, params):
        shipper = deployments.get((dep_source, dep_id))
        if shipper is None:  # only while a concurrent write moves it and its derived rows lag behind
            continue
        first_ship[(service, change_id)] = shipper
        if committed_at is not None:
            committed = from_micros(committed_at)
            earliest[(service, change_id)] = Change.model_construct(
                source="", id=change_id, service=service, committed_at=committed, merged_at=None, url=None
            )
        if merged_at is not None:
            merged[(service, change_id)] = from_micros(merged_at)

    links: dict[Key, Link] = {}
    for column in ("started_at", "cause_at", "fix_at"):
        where, params = between(dialect, scope, column, since, until)
        for row in (yield _LINKS.format(where=where), params):
            if (row[0], row[1]) not in links:
                links[(row[0], row[1])] = _link(row, deployments, decode)
    known = yield scope.incidents_known_sql()

    scoped = list(deployments.values())
    fixes = {id(link.fix) for link in links.values() if link.fix is not None}
    successes = sorted((d for d in scoped if d.status == "success"), key=deployed_order)
    return ScopeEvents(
        request.scope, scoped, successes, earliest, first_ship, list(links.values()), fixes, bool(known[0][0]), merged
    )


def _deployment(row: Sequence[Any], decode: Callable[[Any], Any]) -> Deployment:
    source, id_, service, environment, status, started_at, finished_at, labels = row
    return Deployment.model_construct(
        source=source, id=id_, service=service, environment=environment, status=status,
        started_at=from_micros(started_at), finished_at=optional_moment(finished_at), commit_sha=None,
        change_ids=[], url=None, labels=decode(labels),
    )  # fmt: skip


def _attributed(
    row: Sequence[Any], deployments: dict[Key, Deployment], decode: Callable[[Any], Any], status: DeploymentStatus
) -> Deployment | None:
    """The deployment of ``(source, id, at, labels)``: the range's own object (identity decides what
    counts), else one that only tells its time and labels."""
    source, id_, at, labels = row
    if source is None:
        return None
    found = deployments.get((source, id_))
    if found is not None:
        return found
    moment = from_micros(at)
    return Deployment.model_construct(
        source=source, id=id_, service="", environment="", status=status, started_at=moment, finished_at=moment,
        commit_sha=None, change_ids=[], url=None, labels=decode(labels) if labels is not None else {},
    )  # fmt: skip


def _link(row: Sequence[Any], deployments: dict[Key, Deployment], decode: Callable[[Any], Any]) -> Link:
    (
        source, id_, service, environment, started_at, resolved_at, related, caused_by,
        cause_source, cause_id, cause_at, by_time, cause_labels, fix_source, fix_id,
        fail_source, fail_id, fail_at, fail_labels,
    ) = row  # fmt: skip
    incident = Incident.model_construct(
        source=source, id=id_, service=service, environment=environment, started_at=from_micros(started_at),
        resolved_at=optional_moment(resolved_at), severity=None, caused_by=caused_by,
        deployment_related=bool(related), title=None, url=None,
    )  # fmt: skip
    # The links' cause is a successful deployment (``link_sql``), the named failed run a failure.
    cause = _attributed((cause_source, cause_id, cause_at, cause_labels), deployments, decode, "success")
    named_failure = _attributed((fail_source, fail_id, fail_at, fail_labels), deployments, decode, "failure")
    # A fix counts (as rework) only when it is one of the range's deployments.
    fix = deployments.get((fix_source, fix_id)) if fix_source is not None else None
    return Link(incident, cause, bool(by_time), fix, named_failure)
