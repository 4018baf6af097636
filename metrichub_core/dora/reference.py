"""The exact DORA facts computed from plain events: the rules in their simplest form.

The memory backend answers ``dora_facts`` with this module, the fast SQLite path is
tested against it, and any backend may use it (load the scope's events, call
``facts_from_events``) before it has something faster.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from metrichub_core.deadline import check
from metrichub_core.dora._protocol import DoraFacts, DoraOptions, DoraScope, FactsRequest, Window
from metrichub_core.dora._stats import Summary
from metrichub_core.models import Change, Deployment, Incident

__all__ = [
    "REWORK_LABEL_VALUES",
    "Link",
    "ScopeEvents",
    "deployed_at",
    "deployed_order",
    "facts_from_events",
    "facts_of",
    "is_rework_labelled",
    "scope_events",
]

REWORK_LABEL_VALUES = frozenset({"true", "yes", "1"})
"""Values of the ``rework`` label that mark a deployment as rework."""


def deployed_at(deployment: Deployment) -> datetime:
    """When a deployment counts: its finish, else its start."""
    return deployment.finished_at or deployment.started_at


def is_rework_labelled(deployment: Deployment) -> bool:
    return deployment.labels.get("rework", "").strip().lower() in REWORK_LABEL_VALUES


def deployed_order(deployment: Deployment) -> tuple[datetime, str, str]:
    """The order of deployments in time (ties broken by source and id): it decides which ships a change first."""
    return (deployed_at(deployment), deployment.source, deployment.id)


def _labelled(deployment: Deployment, labels: Mapping[str, str]) -> bool:
    return all(deployment.labels.get(key) == value for key, value in labels.items())


@dataclass
class Link:
    """An incident and what it is attributed to."""

    incident: Incident
    cause: Deployment | None
    """Its deployment under the default options: the latest successful deployment its
    ``caused_by`` names in its service and environment, else one found by time."""
    by_time: bool
    """Whether ``cause`` was found by time rather than named by ``caused_by``."""
    fix: Deployment | None
    named_failure: Deployment | None = None
    """The ``failure`` deployment its ``caused_by`` names in its service and environment, when
    it is later than any successful one of that id: its deployment under ``failed_deployments_count``."""

    def attributed(self, options: DoraOptions) -> Deployment | None:
        """Its deployment under ``options``: one found by time must lie within the attribution window."""
        if options.failed_deployments_count and self.named_failure is not None:
            return self.named_failure
        limit = options.attribution_window
        if self.cause is not None and self.by_time and limit is not None:
            if self.incident.started_at - deployed_at(self.cause) > limit:
                return None
        return self.cause

    def found_by_time(self, options: DoraOptions) -> bool:
        """Whether its deployment under ``options`` was found by time (else named, or none)."""
        return self.by_time and not (options.failed_deployments_count and self.named_failure is not None)

    def name_ignored(self, options: DoraOptions) -> bool:
        """Whether it is deployment-related and its ``caused_by`` names no deployment that counts in
        the change failure rate under ``options`` (so it is attributed by time, if at all)."""
        if not (self.incident.deployment_related and self.incident.caused_by):
            return False
        named = self.cause is not None and not self.by_time
        return not named and not (options.failed_deployments_count and self.named_failure is not None)


@dataclass
class ScopeEvents:
    """A scope's events as the rules read them, window by window."""

    scope: DoraScope
    scoped: list[Deployment]
    """Deployments of the scope's service(s) and environment, any status."""
    successes: list[Deployment]
    """The successful ones, in the order that decides which ships a change first."""
    earliest: dict[tuple[str, str], Change]
    """Per (service, change id): the version with the earliest commit (several sources may report it)."""
    first_ship: dict[tuple[str, str], Deployment]
    """Per (service, change id): the first successful deployment that lists it."""
    links: list[Link]
    """The scope's incidents with their deployment and fix."""
    fixes: set[int]
    """``id()`` of the deployments that fixed an incident (rework)."""
    incidents_known: bool
    """Whether the scope has any incident at all (``links`` may hold only some of them)."""
    merged: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """Per (service, change id): the earliest ``merged_at`` any source reports, for changes that have one."""

    def counted(self, deployment: Deployment, window: Window) -> bool:
        """Whether a deployment counts in ``window``: deployed in it and carrying the scope's labels."""
        return window.since <= deployed_at(deployment) < window.until and _labelled(deployment, self.scope.labels)

    def window_incidents(self, window: Window, options: DoraOptions) -> Iterator[tuple[Link, Deployment | None]]:
        """The incidents that started in ``window``, with their deployment; under a label filter only those
        attributed to a deployment carrying the labels."""
        for link in self.links:
            if not window.since <= link.incident.started_at < window.until:
                continue
            cause = link.attributed(options)
            if self.counts_incident(cause):
                yield link, cause

    def counts_incident(self, cause: Deployment | None) -> bool:
        """Whether an incident attributed to ``cause`` counts: under a label filter only those attributed
        to a deployment carrying the labels."""
        return not self.scope.labels or (cause is not None and _labelled(cause, self.scope.labels))


def scope_events(
    deployments: Iterable[Deployment], changes: Iterable[Change], incidents: Iterable[Incident], scope: DoraScope
) -> ScopeEvents:
    """Prepare the events of (at least) ``scope``: timelines, first shipments and incident links."""
    in_service = [d for d in deployments if scope.service is None or d.service == scope.service]
    scoped = [d for d in in_service if d.environment == scope.environment]
    # What caused_by may name: a deployment of the incident's service and environment (the
    # scope's) that can count in the rate, a success or (under failed_deployments_count) a failure.
    by_id: dict[tuple[str, str], list[Deployment]] = defaultdict(list)
    for deployment in scoped:
        if deployment.status in ("success", "failure"):
            by_id[(deployment.service, deployment.id)].append(deployment)
    successes = sorted((d for d in scoped if d.status == "success"), key=deployed_order)
    timeline: dict[str, list[Deployment]] = defaultdict(list)
    for deployment in successes:
        timeline[deployment.service].append(deployment)
    times = {service: [deployed_at(d) for d in line] for service, line in timeline.items()}

    earliest: dict[tuple[str, str], Change] = {}
    merged: dict[tuple[str, str], datetime] = {}
    for change in changes:
        key = (change.service, change.id)
        if key not in earliest or change.committed_at < earliest[key].committed_at:
            earliest[key] = change
        if change.merged_at is not None and (key not in merged or change.merged_at < merged[key]):
            merged[key] = change.merged_at
    first_ship: dict[tuple[str, str], Deployment] = {}
    for deployment in successes:  # in time order: the first one to list a change ships it
        for change_id in deployment.change_ids:
            first_ship.setdefault((deployment.service, change_id), deployment)

    links = [
        _link(incident, by_id, timeline, times)
        for incident in incidents
        if incident.environment == scope.environment and (scope.service is None or incident.service == scope.service)
    ]
    fixes = {id(link.fix) for link in links if link.fix is not None}
    return ScopeEvents(scope, scoped, successes, earliest, first_ship, links, fixes, bool(links), merged)


def facts_from_events(
    deployments: Iterable[Deployment],
    changes: Iterable[Change],
    incidents: Iterable[Incident],
    request: FactsRequest,
) -> list[DoraFacts]:
    """The facts of every window of ``request``, from the events of (at least) its scope."""
    events = scope_events(deployments, changes, incidents, request.scope)
    check()
    return facts_of(events, request.windows, request.options)


def _link(
    incident: Incident,
    by_id: Mapping[tuple[str, str], Sequence[Deployment]],
    timeline: Mapping[str, Sequence[Deployment]],
    times: Mapping[str, Sequence[datetime]],
) -> Link:
    line, moments = timeline.get(incident.service, ()), times.get(incident.service, ())
    cause: Deployment | None = None
    named_failure: Deployment | None = None
    by_time = False
    if incident.deployment_related:
        named = by_id.get((incident.service, incident.caused_by), ()) if incident.caused_by else ()
        latest = max(named, key=deployed_order, default=None)  # several sources may report the id
        if latest is not None and latest.status == "failure":
            named_failure = latest
        cause = max((d for d in named if d.status == "success"), key=deployed_order, default=None)
        if cause is None:
            position = bisect.bisect_left(moments, incident.started_at)  # strictly before the incident
            cause = line[position - 1] if position else None
            by_time = True
    fix: Deployment | None = None
    if incident.resolved_at is not None:
        position = bisect.bisect_right(moments, incident.started_at)
        if position < len(line) and moments[position] <= incident.resolved_at:
            fix = line[position]
    return Link(incident, cause, by_time, fix, named_failure)


@dataclass
class _Tally:
    """What one window of ``facts_of`` has counted so far."""

    deployments: int = 0
    days: Counter[date] = field(default_factory=Counter)
    failures: int = 0
    failed: int = 0
    rework: int = 0
    leads: list[float] = field(default_factory=list)
    negative: int = 0
    missing: int = 0
    recovery: list[float] = field(default_factory=list)
    restore: list[float] = field(default_factory=list)
    recovery_open: int = 0
    restore_open: int = 0
    unattributed: int = 0
    negative_durations: int = 0
    before_deployment: int = 0
    ignored: int = 0
    commit_to_merge: list[float] = field(default_factory=list)
    merge_to_deploy: list[float] = field(default_factory=list)
    merged_early: int = 0
    merged_late: int = 0

    def facts(self, options: DoraOptions, incidents_known: bool) -> DoraFacts:
        return DoraFacts(
            deployments=self.deployments,
            deploy_days=dict(sorted(self.days.items())),
            failed=self.failed + (self.failures if options.failed_deployments_count else 0),
            failure_status=self.failures,
            rework=self.rework,
            lead_times=Summary.exact(self.leads),
            negative_lead_times=self.negative,
            missing_changes=self.missing,
            recovery=Summary.exact(self.recovery),
            recovery_open=self.recovery_open,
            restore=Summary.exact(self.restore),
            restore_open=self.restore_open,
            unattributed=self.unattributed,
            negative_durations=self.negative_durations,
            recovery_before_deployment=self.before_deployment,
            caused_by_ignored=self.ignored,
            incidents_known=incidents_known,
            commit_to_merge=Summary.exact(self.commit_to_merge),
            merge_to_deploy=Summary.exact(self.merge_to_deploy),
            merged_before_commit=self.merged_early,
            merged_after_deploy=self.merged_late,
        )


def _in_order(windows: Sequence[Window]) -> bool:
    return all(earlier.until <= later.since for earlier, later in itertools.pairwise(windows))


def facts_of(events: ScopeEvents, windows: Sequence[Window], options: DoraOptions) -> list[DoraFacts]:
    """The facts of each window, in one pass over the events whatever the number of windows.

    Each event counts in the window its time falls in (one bisect); windows that overlap
    or are out of order are computed one by one.
    """
    if not _in_order(windows):
        return [facts for window in windows for facts in facts_of(events, (window,), options)]
    starts = [window.since for window in windows]
    tallies = [_Tally() for _ in windows]
    labels = events.scope.labels

    def slot(moment: datetime) -> _Tally | None:
        position = bisect.bisect_right(starts, moment) - 1
        return tallies[position] if position >= 0 and moment < windows[position].until else None

    def counted(deployment: Deployment) -> _Tally | None:
        return slot(deployed_at(deployment)) if _labelled(deployment, labels) else None

    caused = {id(cause) for link in events.links if (cause := link.attributed(options)) is not None}
    for deployment in events.successes:
        if (tally := counted(deployment)) is not None:
            tally.deployments += 1
            tally.days[deployed_at(deployment).date()] += 1
            tally.failed += id(deployment) in caused
            tally.rework += id(deployment) in events.fixes or is_rework_labelled(deployment)
    for deployment in events.scoped:
        if deployment.status == "failure" and (tally := counted(deployment)) is not None:
            tally.failures += 1
    check()

    for key, deployment in events.first_ship.items():
        if (tally := counted(deployment)) is None:
            continue
        change = events.earliest.get(key)
        if change is None:
            tally.missing += 1
            continue
        seconds = (deployed_at(deployment) - change.committed_at).total_seconds()
        if seconds < 0:
            tally.negative += 1
            continue
        tally.leads.append(seconds)
        merged = events.merged.get(key)
        if merged is not None:
            # The breakdown's rule: the merge is clamped into [first commit, deployment finish],
            # so both stages are >= 0 and add up to the lead time; a clamped merge is counted.
            tally.merged_early += merged < change.committed_at
            tally.merged_late += merged > deployed_at(deployment)
            merged = min(max(merged, change.committed_at), deployed_at(deployment))
            tally.commit_to_merge.append((merged - change.committed_at).total_seconds())
            tally.merge_to_deploy.append((deployed_at(deployment) - merged).total_seconds())
    check()

    for link in events.links:
        incident = link.incident
        if (tally := slot(incident.started_at)) is None:
            continue
        cause = link.attributed(options)
        if not events.counts_incident(cause):
            continue
        tally.ignored += link.name_ignored(options)
        if cause is None and incident.deployment_related:
            tally.unattributed += 1
        if incident.resolved_at is None:
            tally.restore_open += 1
            tally.recovery_open += cause is not None
            continue
        duration = (incident.resolved_at - incident.started_at).total_seconds()
        if duration < 0:
            tally.negative_durations += 1
            continue
        tally.restore.append(duration)
        if cause is not None:
            if options.recovery_clock == "deployment":
                duration = (incident.resolved_at - deployed_at(cause)).total_seconds()
            if duration < 0:  # only the deployment clock: a caused_by incident may start before its deployment ends
                tally.before_deployment += 1
            else:
                tally.recovery.append(duration)
    check()
    return [tally.facts(options, events.incidents_known) for tally in tallies]
