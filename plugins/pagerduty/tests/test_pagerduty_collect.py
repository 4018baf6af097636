"""Collection against the fake PagerDuty over real HTTP: paging, windows, open incidents, request cost."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from pagerduty_fake import (
    ACCEPT,
    SERVICES,
    TOKEN,
    UNMAPPED,
    FakePagerDuty,
    at,
    make_incident,
    now_s,
    stored_incidents,
    table,
)

from metrichub_core import MetricHub
from metrichub_core.config import Settings
from metrichub_core.testing import Reply


def hub_for(pagerduty: FakePagerDuty, **overrides: Any) -> MetricHub:
    return MetricHub("memory://", settings=Settings(sources={"pd": table(pagerduty.url, **overrides)}))


async def saved_state(hub: MetricHub) -> Any:
    """What the source kept in ``ctx.state`` after its last successful run."""
    stored = await hub.storage.get_state("pd")
    assert stored is not None
    return stored["source"]


async def collect_ok(hub: MetricHub) -> Any:
    (result,) = await hub.collect()
    assert result.ok, result.error
    return result


async def test_first_run_pages_by_offset_until_more_is_false(pagerduty: FakePagerDuty, caplog: Any) -> None:
    """60 mapped incidents and 3 of an unmapped service; the fake serves 25 a page though 100 are asked."""
    caplog.set_level(logging.INFO)
    now = now_s()
    pagerduty.max_limit = 25
    services = list(SERVICES)
    for number in range(1, 61):
        created = now - timedelta(days=20) + timedelta(hours=7 * number)
        resolved = created + timedelta(minutes=10 + number)
        priority = None if number % 3 == 0 else "P1"
        pagerduty.add(
            make_incident(number, service=services[number % 2], created=created, resolved=resolved, priority=priority)
        )
    for number in range(61, 64):
        pagerduty.add(make_incident(number, service=UNMAPPED, created=now - timedelta(days=1)))
    async with hub_for(pagerduty, caused_by_from_notes=False, history_days=30) as hub:
        await collect_ok(hub)
        stored = await stored_incidents(hub)

    lists = pagerduty.calls_to("/incidents")
    # The unmapped service is filtered by PagerDuty already (service_ids[]), so 60 items: pages of
    # 25, 25, 10 at offsets 0, 25, 50 (advanced by what came back, not by the 100 asked for).
    assert [call.one("offset") for call in lists] == ["0", "25", "50"]
    assert {call.one("limit") for call in lists} == {"100"}
    assert all(sorted(call.query["service_ids[]"]) == sorted(SERVICES) for call in lists)
    assert all(call.one("sort_by") == "created_at:asc" for call in lists)
    assert all(call.headers["authorization"] == f"Token token={TOKEN}" for call in pagerduty.calls)
    assert all(call.headers["accept"] == ACCEPT for call in pagerduty.calls)
    assert len(stored) == 60
    first = stored["Q000001"]
    source = pagerduty.incidents["Q000001"]
    assert (first.service, first.environment, first.deployment_related) == ("payments", "production", True)
    assert first.started_at == at(source["created_at"]) and first.resolved_at == at(source["resolved_at"])
    assert first.resolved_at - first.started_at == timedelta(minutes=11)
    assert first.updated_at == at(source["updated_at"])  # the incident's version
    assert (first.title, first.url) == ("Incident 1", "https://acme.pagerduty.com/incidents/Q000001")
    assert first.severity == "P1"  # the priority's summary
    assert stored["Q000003"].severity == "high"  # no priority: the urgency
    assert stored["Q000002"].service == "checkout"


async def test_unmapped_services_are_skipped_with_a_count(pagerduty: FakePagerDuty, caplog: Any) -> None:
    """An open incident moved to a service not in ``services`` leaves the refresh with a log line."""
    caplog.set_level(logging.INFO)
    now = now_s()
    moving = make_incident(1, service="PCHK001", created=now - timedelta(days=3))
    pagerduty.add(moving, make_incident(2, service="PCHK001", created=now - timedelta(days=2)))
    async with hub_for(pagerduty) as hub:
        await collect_ok(hub)
        moving["service"] = {**moving["service"], "id": UNMAPPED}
        await collect_ok(hub)
        state = await saved_state(hub)
    assert "skipped 1 incidents of services not in `services`: PZZZ999 (1)" in caplog.text
    assert sorted(state["open"]) == ["Q000002"]


async def test_a_history_longer_than_six_months_is_split_into_windows(pagerduty: FakePagerDuty) -> None:
    """400 days of history: windows of at most 180 days (the fake refuses longer ones with 400)."""
    now = now_s()
    for number, days_ago in enumerate((399, 300, 221, 150, 40, 1), start=1):
        created = now - timedelta(days=days_ago)
        pagerduty.add(make_incident(number, service="PCHK001", created=created, resolved=created + timedelta(hours=1)))
    async with hub_for(pagerduty, history_days=400, caused_by_from_notes=False) as hub:
        await collect_ok(hub)
        stored = await stored_incidents(hub)
    spans = [(at(call.one("since")), at(call.one("until"))) for call in pagerduty.calls_to("/incidents")]
    assert len(spans) == 3  # 400 days + 1 hour ahead = 180 + 180 + 40 days 1 hour
    assert all(until - since <= timedelta(days=180) for since, until in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1)), "windows are contiguous"
    assert now - timedelta(days=400, seconds=2) <= spans[0][0] <= now - timedelta(days=400) + timedelta(seconds=2)
    assert spans[-1][1] >= now + timedelta(minutes=59)
    assert sorted(stored) == [f"Q{number:06d}" for number in range(1, 7)]


async def test_more_than_10000_incidents_in_one_window_are_all_collected(pagerduty: FakePagerDuty) -> None:
    """10,050 incidents in one window: offset + limit may not pass 10,000, so the rest is asked from the last one."""
    now = now_s()
    start = now - timedelta(days=30)
    pagerduty.incidents.update(
        (incident["id"], incident)
        for incident in (
            make_incident(number, service="PPAY002", created=start + timedelta(minutes=3 * number))
            for number in range(1, 10_051)
        )
    )
    async with hub_for(pagerduty, history_days=31) as hub:
        source = hub.sources["pd"].create()
        try:
            ids = [event.id async for event in source.collect(None)]
        finally:
            await source.ctx.http.aclose()
    assert len(ids) == len(set(ids)) == 10_050
    lists = pagerduty.calls_to("/incidents")
    assert all(call.status == 200 for call in lists)  # never a 400 for passing the cap
    offsets = [int(call.one("offset")) for call in lists]
    assert offsets[:100] == list(range(0, 10_000, 100))  # 100 pages of 100 reach the cap
    restart = lists[100]
    assert offsets[100] == 0
    # The rest is asked from a second before the 10,000th incident (created at start + 30,000 min).
    assert at(restart.one("since")) == start + timedelta(minutes=30_000) - timedelta(seconds=1)
    assert len(lists) == 101  # the 10,000th again plus the 50 after it fit in one page


async def test_an_incident_opened_before_the_cursor_and_resolved_after_it_is_updated(
    pagerduty: FakePagerDuty,
) -> None:
    now = now_s()
    opened = make_incident(1, service="PCHK001", created=now - timedelta(days=2), status="acknowledged")
    pagerduty.add(opened, make_incident(2, service="PPAY002", created=now - timedelta(days=1)))
    async with hub_for(pagerduty) as hub:
        await collect_ok(hub)
        assert sorted((await saved_state(hub))["open"]) == ["Q000001", "Q000002"]
        resolved = now - timedelta(hours=1)
        pagerduty.resolve("Q000001", resolved)
        pagerduty.note("Q000001", "Rolled back.\n\nCaused-by: 4711", resolved)
        before = len(pagerduty.calls)
        second = await collect_ok(hub)
        stored = await stored_incidents(hub)
        state = await saved_state(hub)
    calls = pagerduty.calls[before:]
    assert not second.full
    # New since the cursor (none), the still-open list (only #2 left in it), then #1 by id and its notes.
    paths = [call.path for call in calls]
    assert paths == ["/incidents", "/incidents", "/incidents/Q000001", "/incidents/Q000001/notes"]
    assert calls[1].query["statuses[]"] == ["triggered", "acknowledged"]
    assert at(calls[1].one("since")) == at(opened["created_at"])
    assert stored["Q000001"].resolved_at == resolved
    assert stored["Q000001"].caused_by == "4711"
    assert stored["Q000002"].resolved_at is None
    assert sorted(state["open"]) == ["Q000002"] and state["caused_by"] == {"Q000001": "4711"}


async def test_a_rerun_with_nothing_new_costs_the_open_refresh_and_one_page(pagerduty: FakePagerDuty) -> None:
    """Budget: at most the open incidents' refresh plus one page per service; measured: 2 requests."""
    now = now_s()
    for number in range(1, 41):  # 40 resolved incidents over 60 days, 4 of them with a Caused-by note
        created = now - timedelta(days=60) + timedelta(hours=30 * number)
        pagerduty.add(make_incident(number, service=list(SERVICES)[number % 2], created=created,
                                    resolved=created + timedelta(minutes=45)))  # fmt: skip
        if number % 10 == 0:
            pagerduty.note(f"Q{number:06d}", f"Caused-by: deploy-{number}", created + timedelta(minutes=50))
    for number in range(41, 44):  # 3 still open, 50, 20 and 2 days old
        created = now - timedelta(days={41: 50, 42: 20, 43: 2}[number])
        pagerduty.add(make_incident(number, service="PCHK001", created=created, status="acknowledged"))
    async with hub_for(pagerduty, history_days=90) as hub:
        await collect_ok(hub)
        first = len(pagerduty.calls)
        before = await stored_incidents(hub)
        await collect_ok(hub)
        second = len(pagerduty.calls) - first
        after = await stored_incidents(hub)
        third_start = len(pagerduty.calls)
        await collect_ok(hub)
        third = len(pagerduty.calls) - third_start
    # First run: 1 list page (43 incidents in one 90-day window) + the notes of the 40 resolved ones.
    assert first == 1 + 40
    assert sum(1 for event in before.values() if event.caused_by) == 4
    open_incidents, services = 3, len(SERVICES)
    # Re-run: 1 page of incidents created since the cursor (all services at once) + 1 page listing
    # the 3 still-open ones (their creation times fit one 180-day window): 2 <= 3 + 2.
    print(f"requests: first run {first}, re-run with nothing new {second} (budget {open_incidents + services})")
    assert second == third == 2
    assert second <= open_incidents + services
    assert after == before


async def test_urgencies_filter_is_sent_and_applied(pagerduty: FakePagerDuty) -> None:
    now = now_s()
    pagerduty.add(
        make_incident(1, service="PCHK001", created=now - timedelta(days=1), urgency="high"),
        make_incident(2, service="PCHK001", created=now - timedelta(days=1), urgency="low"),
    )
    async with hub_for(pagerduty, urgencies=["high"]) as hub:
        await collect_ok(hub)
        stored = await stored_incidents(hub)
    assert sorted(stored) == ["Q000001"]
    assert pagerduty.calls_to("/incidents")[0].query["urgencies[]"] == ["high"]


async def test_a_429_with_ratelimit_reset_is_waited_out(pagerduty: FakePagerDuty) -> None:
    """PagerDuty's ``ratelimit-reset`` is seconds to wait; it comes here without ``ratelimit-remaining``."""
    now = now_s()
    pagerduty.add(make_incident(1, service="PCHK001", created=now - timedelta(days=1)))
    limited = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    pagerduty.faults.append(Reply(429, json=limited, headers={"ratelimit-limit": "960", "ratelimit-reset": "2"}))
    async with hub_for(pagerduty) as hub:
        await collect_ok(hub)
        assert "Q000001" in await stored_incidents(hub)
    refused, retried = pagerduty.calls_to("/incidents")[:2]
    assert (refused.status, retried.status) == (429, 200)
    assert retried.at - refused.at >= 1.9  # the reset, not a short backoff (policy: 0.05 s initial)


async def test_a_429_without_headers_is_retried_with_backoff(pagerduty: FakePagerDuty) -> None:
    now = now_s()
    pagerduty.add(make_incident(1, service="PCHK001", created=now - timedelta(days=1)))
    pagerduty.faults.extend([Reply(429), Reply(429)])
    async with hub_for(pagerduty) as hub:
        await collect_ok(hub)
        assert "Q000001" in await stored_incidents(hub)
    first, second, third = pagerduty.calls_to("/incidents")[:3]
    assert [call.status for call in (first, second, third)] == [429, 429, 200]
    # Backoff 0.05 s then 0.1 s, each with jitter down to half: gaps of at least 0.025 and 0.05 s.
    assert second.at - first.at >= 0.025 and third.at - second.at >= 0.05


async def test_a_wrong_token_fails_the_run_with_401_and_never_shows_the_token(pagerduty: FakePagerDuty) -> None:
    pagerduty.add(make_incident(1, service="PCHK001", created=now_s() - timedelta(days=1)))
    wrong = "u+WrongTokenValue_0123456789"
    async with hub_for(pagerduty, token=wrong) as hub:
        (result,) = await hub.collect()
        assert await hub.storage.get_state("pd") is None
    assert not result.ok
    assert "401" in (result.error or "") and "token" in (result.error or "")
    assert wrong not in (result.error or "")
    assert [call.status for call in pagerduty.calls] == [401]  # not retried: a 401 is not transient


@pytest.mark.parametrize("notes", [True, False])
async def test_caused_by_notes_can_be_turned_off(pagerduty: FakePagerDuty, notes: bool) -> None:
    now = now_s()
    pagerduty.add(make_incident(1, service="PCHK001", created=now - timedelta(days=1), resolved=now))
    pagerduty.note("Q000001", "Caused-by: 123", now)
    async with hub_for(pagerduty, caused_by_from_notes=notes) as hub:
        await collect_ok(hub)
        stored = await stored_incidents(hub)
    assert stored["Q000001"].caused_by == ("123" if notes else None)
    assert len(pagerduty.calls_to("/incidents/Q000001/notes")) == int(notes)


async def test_a_changed_scope_reads_the_whole_history_again(pagerduty: FakePagerDuty) -> None:
    """Another service added: its incidents from before the cursor are collected too."""
    now = now_s()
    pagerduty.add(
        make_incident(1, service="PCHK001", created=now - timedelta(days=100), resolved=now),
        make_incident(2, service=UNMAPPED, created=now - timedelta(days=90), resolved=now),
    )
    first = hub_for(pagerduty, caused_by_from_notes=False)
    await collect_ok(first)
    services = {**SERVICES, UNMAPPED: "search"}
    settings = Settings(sources={"pd": table(pagerduty.url, services=services, caused_by_from_notes=False)})
    async with MetricHub(first.storage, settings=settings) as hub:
        await collect_ok(hub)
        stored = await stored_incidents(hub)
        state = await saved_state(hub)
    assert sorted(stored) == ["Q000001", "Q000002"] and stored["Q000002"].service == "search"
    assert state["scope"]["services"] == sorted(services)


async def test_open_incidents_far_apart_are_refreshed_in_few_windows(pagerduty: FakePagerDuty) -> None:
    """Open incidents 300, 299 and 10 days old: two open-list windows; one that disappeared (merged) is dropped."""
    now = now_s()
    for number, days_ago in ((1, 300), (2, 299), (3, 10), (4, 5)):
        pagerduty.add(make_incident(number, service="PCHK001", created=now - timedelta(days=days_ago)))
    async with hub_for(pagerduty) as hub:
        await collect_ok(hub)
        del pagerduty.incidents["Q000004"]  # merged into another incident: gone from every list, 404 by id
        before = len(pagerduty.calls)
        await collect_ok(hub)
        state = await saved_state(hub)
    calls = pagerduty.calls[before:]
    open_lists = [call for call in calls if "statuses[]" in call.query]
    spans = [(at(call.one("since")), at(call.one("until"))) for call in open_lists]
    assert spans == [
        (now - timedelta(days=300), now - timedelta(days=120)),  # 180 days from the oldest
        (now - timedelta(days=10), now - timedelta(days=5) + timedelta(seconds=1)),  # up to the newest
    ]
    assert [call.path for call in calls if call.path != "/incidents"] == ["/incidents/Q000004"]
    assert sorted(state["open"]) == ["Q000001", "Q000002", "Q000003"]
