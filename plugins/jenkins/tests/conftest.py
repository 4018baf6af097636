"""Fixtures: a fake Jenkins on 127.0.0.1 per test (see ``jenkins_fake.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jenkins_fake import FakeJenkins

from metrichub_core.testing import FakeUpstream


@pytest.fixture
def jenkins() -> Iterator[FakeJenkins]:
    with FakeUpstream() as upstream:
        yield FakeJenkins(upstream)
