from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from metrichub_core.resilience import Policy, SourceResilience
from metrichub_core.testing.upstream import FakeUpstream

# Short waits keep the suite fast; each test overrides what it exercises.
FAST = {"retries": 3, "timeout_seconds": 2.0, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05,
        "rate_limit_per_second": 200.0, "breaker_fail_max": 50}  # fmt: skip


def fast_policy(**overrides: object) -> Policy:
    return Policy.model_validate({**FAST, **overrides})


def _resilience(**overrides: object) -> SourceResilience:
    return SourceResilience("test-source", fast_policy(**overrides))


@pytest.fixture
def resilience() -> Callable[..., SourceResilience]:
    """``resilience(retries=2, ...)``: a source's policies with fast test defaults."""
    return _resilience


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server
