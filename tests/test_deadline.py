"""``metrichub_core.deadline``: what deep work reads to stop with its request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from metrichub_core import Change, Deployment
from metrichub_core.deadline import DeadlineExceeded, Stop, check, deadline, remaining
from metrichub_core.dora import DoraScope, FactsRequest, Window
from metrichub_core.dora.reference import facts_from_events


def test_no_deadline_outside_a_block_and_an_inner_block_cannot_extend_an_outer_one() -> None:
    assert remaining() is None
    check()  # nothing to exceed
    with deadline(0):
        with deadline(3600):
            assert remaining() == 0  # the outer, earlier deadline still applies
            with pytest.raises(DeadlineExceeded):
                check()
    assert remaining() is None


def test_the_reference_rules_stop_at_the_deadline() -> None:
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    change = Change(id="c1", source="git", service="api", committed_at=t0)
    shipped = Deployment(
        id="d1", source="ci", service="api", status="success", started_at=t0 + timedelta(hours=1), change_ids=["c1"]
    )
    request = FactsRequest(DoraScope(), [Window(t0, t0 + timedelta(days=1))])
    (facts,) = facts_from_events([shipped], [change], [], request)
    assert facts.deployments == 1 and facts.lead_times.count == 1
    with deadline(0), pytest.raises(DeadlineExceeded):
        facts_from_events([shipped], [change], [], request)


async def test_a_stop_is_due_at_its_deadline_or_when_stopped_and_threads_see_the_deadline() -> None:
    assert not Stop().due()
    with deadline(0):
        assert Stop().due()
        with pytest.raises(DeadlineExceeded):
            await asyncio.to_thread(check)  # the thread runs in a copy of the caller's context
    stop = Stop()
    stop.stop()
    assert stop.due()
