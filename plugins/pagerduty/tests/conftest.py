"""Fixtures: a fake PagerDuty served over real HTTP (``pagerduty_fake.FakePagerDuty``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pagerduty_fake import FakePagerDuty, serve


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    yield from serve()
