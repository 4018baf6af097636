"""A fake PagerDuty REST v2 API served over real HTTP by the core's ``FakeUpstream``.

Every incident, page, note and webhook is a copy of a fixture in ``fixtures/`` with only
ids, numbers, times, statuses, services, urgencies, priorities and titles changed. The fake
checks ``Authorization: Token token=…`` (401 without it), reads ``since``/``until`` on
``created_at`` (since inclusive, until exclusive, at most 180 days apart, else 400), filters
``service_ids[]``, ``statuses[]`` and ``urgencies[]``, sorts by ``created_at``, pages with
``limit``/``offset``/``more`` (``offset + limit`` over 10,000 → 400; ``max_limit`` can make
it return fewer items than asked for), sends ``ratelimit-*`` headers, and answers queued
faults (a 429, …) before anything else. ``calls`` logs every request with its full query
(``FakeUpstream``'s own log keeps one value per query key; ``statuses[]`` repeats).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from metrichub_core.testing import FakeUpstream, RecordedRequest, Reply

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "u+PdTestToken_y_NbAkKc66ryYTW"
ACCEPT = "application/vnd.pagerduty+json;version=2"
SERVICES = {"PCHK001": "checkout", "PPAY002": "payments"}
UNMAPPED = "PZZZ999"
WEB = "https://acme.pagerduty.com"
API = "https://api.pagerduty.com"
MAX_SPAN = timedelta(days=180)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def now_s() -> datetime:
    """Now, in whole seconds (PagerDuty's times have no fractions)."""
    return datetime.now(UTC).replace(microsecond=0)


def sign(body: bytes, *secrets: str) -> str:
    return ",".join("v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() for secret in secrets)


def make_incident(
    number: int,
    *,
    service: str,
    created: datetime,
    resolved: datetime | None = None,
    status: str | None = None,
    urgency: str = "high",
    priority: str | None = "P2",
    title: str | None = None,
) -> dict[str, Any]:
    """A ``GET /incidents`` item (PagerDuty's example) with this number, service, times and status."""
    item: dict[str, Any] = copy.deepcopy(fixture("rest/list_incidents.json")["incidents"][0])
    incident_id = f"Q{number:06d}"
    title = title or f"Incident {number}"
    status = status or ("resolved" if resolved else "triggered")
    changed = resolved or created
    item.update(
        id=incident_id, summary=f"[#{number}] {title}", self=f"{API}/incidents/{incident_id}",
        html_url=f"{WEB}/incidents/{incident_id}", incident_number=number, title=title, created_at=iso(created),
        updated_at=iso(changed), status=status, incident_key=hashlib.md5(incident_id.encode()).hexdigest(),
        last_status_change_at=iso(changed), resolved_at=iso(resolved) if resolved else None, urgency=urgency,
    )  # fmt: skip
    item["service"] = {
        **item["service"], "id": service, "summary": SERVICES.get(service, "Other service"),
        "self": f"{API}/services/{service}", "html_url": f"{WEB}/service-directory/{service}",
    }  # fmt: skip
    item["priority"] = None if priority is None else {**item["priority"], "summary": priority}
    item["alert_grouping"]["started_at"] = iso(created)
    return item


def make_note(content: str, created: datetime) -> dict[str, Any]:
    note: dict[str, Any] = copy.deepcopy(fixture("rest/list_incident_notes.json")["notes"][0])
    note.update(content=content, created_at=iso(created), updated_at=iso(created))
    return note


def webhook_payload(event_type: str, incident: dict[str, Any], occurred: datetime) -> dict[str, Any]:
    """A v3 webhook (PagerDuty's example) carrying ``incident`` as its ``event.data`` incident shape."""
    payload: dict[str, Any] = copy.deepcopy(fixture("webhooks/incident.priority_updated.json"))
    data: dict[str, Any] = copy.deepcopy(fixture("webhooks/event_data.incident.json"))
    data.update(
        id=incident["id"], self=incident["self"], html_url=incident["html_url"], number=incident["incident_number"],
        status=incident["status"], created_at=incident["created_at"], title=incident["title"],
        urgency=incident["urgency"], service=dict(incident["service"]),
        priority=None if incident["priority"] is None else {**data["priority"], **incident["priority"]},
    )  # fmt: skip
    payload["event"].update(event_type=event_type, occurred_at=iso(occurred), data=data)
    return payload


@dataclass(frozen=True)
class Call:
    """One request the fake received: path, every query value, arrival time (``time.monotonic()``)."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    status: int

    def one(self, key: str) -> str:
        return self.query[key][0]


class FakePagerDuty:
    """The fake's data and handlers; tests add incidents and notes, queue faults and read ``calls``."""

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.token = TOKEN
        self.max_limit = 100
        self.incidents: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.faults: deque[Reply] = deque()
        self.calls: list[Call] = []
        upstream.script("/incidents", self._list)

    @property
    def url(self) -> str:
        return self.upstream.url

    def add(self, *incidents: dict[str, Any]) -> None:
        for incident in incidents:
            self.incidents[incident["id"]] = incident
            self.upstream.script(f"/incidents/{incident['id']}", self._get)
            self.upstream.script(f"/incidents/{incident['id']}/notes", self._notes)

    def resolve(self, incident_id: str, when: datetime) -> None:
        self.incidents[incident_id].update(
            status="resolved", resolved_at=iso(when), last_status_change_at=iso(when), updated_at=iso(when)
        )

    def note(self, incident_id: str, content: str, when: datetime) -> None:
        self.notes.setdefault(incident_id, []).append(make_note(content, when))

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    # -- serving -------------------------------------------------------------

    def _log(self, request: RecordedRequest, reply: Reply) -> Reply:
        query = parse_qs(request.query_string, keep_blank_values=True)
        self.calls.append(Call(request.path, query, request.headers, request.at, reply.status))
        return reply

    def _headers(self) -> dict[str, str]:
        return {"ratelimit-limit": "960", "ratelimit-remaining": "900", "ratelimit-reset": "30"}

    def _refuse(self, request: RecordedRequest) -> Reply | None:
        if self.faults:
            return self.faults.popleft()
        if request.headers.get("authorization") != f"Token token={self.token}":
            return Reply(401, json={"error": {"message": "Unauthorized", "code": 2006}}, headers=self._headers())
        return None

    def _error(self, message: str, *errors: str) -> Reply:
        return Reply(400, json={"error": {"message": message, "code": 2001, "errors": list(errors)}})

    def _list(self, request: RecordedRequest) -> Reply:
        return self._log(request, self._refuse(request) or self._incidents(parse_qs(request.query_string)))

    def _incidents(self, query: dict[str, list[str]]) -> Reply:
        def value(key: str, default: str) -> str:
            return query.get(key, [default])[0]

        try:
            until = at(value("until", iso(now_s())))
            since = at(value("since", iso(until - timedelta(days=30))))
            limit = min(int(value("limit", "25")), 100)
            offset = int(value("offset", "0"))
        except ValueError as exc:
            return self._error("Invalid Input Provided", str(exc))
        if any(not value(key, "Z").endswith(("Z", "+00:00")) for key in ("since", "until")):
            return self._error("Invalid Input Provided", "send since/until with an explicit zone")
        if until - since > MAX_SPAN:
            return self._error("Invalid Input Provided", "since and until must be at most 6 months apart")
        if offset + limit > 10_000:
            return self._error("Invalid Input Provided", "Offset + limit must not exceed 10000")
        items = [
            item
            for item in self.incidents.values()
            if since <= at(item["created_at"]) < until
            and ("service_ids[]" not in query or item["service"]["id"] in query["service_ids[]"])
            and ("statuses[]" not in query or item["status"] in query["statuses[]"])
            and ("urgencies[]" not in query or item["urgency"] in query["urgencies[]"])
        ]
        items.sort(key=lambda item: (item["created_at"], item["incident_number"]))
        if value("sort_by", "created_at:asc") == "created_at:desc":
            items.reverse()
        served = min(limit, self.max_limit)
        page = items[offset : offset + served]
        body = {"incidents": page, "limit": served, "offset": offset, "more": offset + len(page) < len(items)}
        return Reply(200, json={**body, "total": None}, headers=self._headers())

    def _get(self, request: RecordedRequest) -> Reply:
        refused = self._refuse(request)
        if refused is not None:
            return self._log(request, refused)
        incident = self.incidents.get(request.path.split("/")[2])
        if incident is None:  # deleted or merged into another incident
            return self._log(request, Reply(404, json={"error": {"message": "Not Found", "code": 2100}}))
        shaped: dict[str, Any] = copy.deepcopy(fixture("rest/get_incident.json")["incident"])
        shaped.update(copy.deepcopy(incident))
        if incident["status"] == "resolved":
            shaped.update(assignments=[], acknowledgements=[], pending_actions=[])
        return self._log(request, Reply(200, json={"incident": shaped}, headers=self._headers()))

    def _notes(self, request: RecordedRequest) -> Reply:
        refused = self._refuse(request)
        if refused is not None:
            return self._log(request, refused)
        notes = self.notes.get(request.path.split("/")[2], [])
        return self._log(request, Reply(200, json={"notes": notes}, headers=self._headers()))


def serve() -> Iterator[FakePagerDuty]:
    """A running fake PagerDuty (the ``pagerduty`` fixture)."""
    with FakeUpstream() as upstream:
        yield FakePagerDuty(upstream)


def table(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A ``[sources.pd]`` table pointed at the fake; a fast policy for tests."""
    values: dict[str, Any] = {
        "kind": "pagerduty",
        "base_url": base_url,
        "token": TOKEN,
        "services": dict(SERVICES),
        "webhook_secrets": ["whsec-current"],
        "policy": {"rate_limit_per_second": 1000, "backoff_initial_seconds": 0.05, "retries": 2},
    }
    return {**values, **overrides}


async def stored_incidents(hub: Any, source: str = "pd") -> dict[str, Any]:
    """Every incident ``source`` stored, by id."""
    from metrichub_core.storage.base import EventQuery

    found: dict[str, Any] = {}
    cursor = None
    while True:
        page = await hub.storage.list_events(EventQuery(kind="incident", source=source, limit=500, cursor=cursor))
        found.update((event.id, event) for event in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found
