"""Fixtures of the DORA tests: every golden case runs on every backend.

``storage_url`` yields a fresh, empty storage location per test. To run the golden
cases on another backend, set ``METRICHUB_DORA_STORAGE_URL`` to its URL; ``{name}``
in it is replaced by a unique name per test (a database or schema to start empty).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from metrichub_core import MetricHub

_EXTRA = os.environ.get("METRICHUB_DORA_STORAGE_URL")
_BACKENDS = ["memory", "sqlite", *(["extra"] if _EXTRA else [])]


@pytest.fixture(params=_BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/dora.db"
    assert _EXTRA is not None
    return _EXTRA.replace("{name}", f"dora_{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def hub(storage_url: str) -> AsyncIterator[MetricHub]:
    async with MetricHub(storage=storage_url) as opened:
        yield opened
