"""The core's source contract suite, run against the fake PagerDuty."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from metrichub_plugin_pagerduty import PagerDutySource
from pagerduty_fake import UNMAPPED, FakePagerDuty, make_incident, now_s, serve, sign, table, webhook_payload

from metrichub_core.testing.source_contract import SourceContract

SECRET = "contract-webhook-secret"


def history(pagerduty: FakePagerDuty) -> list[dict[str, Any]]:
    """Resolved, open and unmapped incidents over the last 40 days."""
    now = now_s()
    incidents = [
        make_incident(1, service="PCHK001", created=now - timedelta(days=40), resolved=now - timedelta(days=39)),
        make_incident(2, service="PPAY002", created=now - timedelta(days=12), resolved=now - timedelta(days=11)),
        make_incident(3, service="PCHK001", created=now - timedelta(days=3), status="acknowledged"),
        make_incident(4, service=UNMAPPED, created=now - timedelta(days=2)),
        make_incident(5, service="PPAY002", created=now - timedelta(hours=2), priority=None, urgency="low"),
    ]
    pagerduty.add(*incidents)
    pagerduty.note("Q000002", "Caused-by: 77", now - timedelta(days=11))
    return incidents


class TestPagerDutySourceContract(SourceContract):
    source_class = PagerDutySource
    expected_keys: ClassVar[set[tuple[str, str]] | None] = {("incident", f"Q{n:06d}") for n in (1, 2, 3, 5)}

    @pytest.fixture
    def upstream(self) -> Iterator[FakePagerDuty]:
        for pagerduty in serve():
            history(pagerduty)
            yield pagerduty

    def source_table(self, base_url: str) -> dict[str, Any]:
        return table(base_url, webhook_secrets=["previous-secret", SECRET])

    def webhook_delivery(self, table: Mapping[str, Any]) -> tuple[dict[str, str], bytes] | None:
        incident = make_incident(9, service="PCHK001", created=now_s() - timedelta(minutes=5))
        body = json.dumps(webhook_payload("incident.triggered", incident, now_s())).encode()
        return {"X-PagerDuty-Signature": sign(body, SECRET)}, body
