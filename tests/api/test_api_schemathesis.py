"""Schemathesis against /openapi.json, in process over ASGI: no 5xx (and conformance) over 500+ requests."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("CI"):
    import schemathesis  # CI installs the dev extra: a missing schemathesis must fail, not skip
else:
    schemathesis = pytest.importorskip("schemathesis")

from api_helpers import make_hub
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from metrichub_core.api import create_app
from metrichub_core.demo import demo_events

MIN_REQUESTS = 500
BUDGET_SECONDS = 240
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}
# Beyond "no 5xx": statuses, content types, headers and bodies as documented, invalid input refused.
# (Not positive_data_acceptance: the schema cannot say "since or days", "a cursor this API returned".)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def loaded_app(storage: str) -> Any:
    hub = make_hub(storage=storage)

    asyncio.run(hub.ingest(list(demo_events(days=30, seed=11))))
    return create_app(hub, schedule=False)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_no_server_errors_across_generated_requests(backend: str, tmp_path: Path) -> None:
    app = loaded_app("memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'schemathesis.db'}")
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        statuses: Counter[int] = Counter()
        started = time.monotonic()
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) >= 18
        for operation in operations:
            for mode, examples in EXAMPLES.items():

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                def exercise(case: Any) -> None:
                    response = case.call()
                    statuses[response.status_code] += 1
                    case.validate_response(response, checks=CHECKS)
                    assert response.headers.get("x-request-id"), "every response carries X-Request-ID"

                try:
                    exercise()
                except Unsatisfiable:
                    # Nothing in the operation can be made invalid (no parameters, no body).
                    assert mode is GenerationMode.NEGATIVE, operation.label
                assert time.monotonic() - started < BUDGET_SECONDS, "schemathesis run over its time budget"
        total = sum(statuses.values())
        print(
            f"schemathesis ({backend}): {total} requests over {len(operations)} operations,"
            f" statuses {dict(sorted(statuses.items()))}"
        )
        assert total >= MIN_REQUESTS
        assert not [status for status in statuses if status >= 500]
    finally:
        asyncio.run(app.state.metrichub.hub.close())
