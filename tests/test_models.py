from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from metrichub_core import Change, Deployment, Incident
from metrichub_core.models import MAX_CHANGE_IDS, MAX_LABELS


def test_offsets_are_converted_to_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    change = Change(id="c", source="s", service="api", committed_at=datetime(2026, 3, 2, 8, 30, tzinfo=tokyo))
    assert change.committed_at == datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert change.committed_at.tzinfo is UTC


def test_iso_strings_with_offsets_are_accepted() -> None:
    incident = Incident.model_validate(
        {"id": "i", "source": "s", "service": "api", "started_at": "2026-03-02T01:00:00-05:00"}
    )
    assert incident.started_at == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert incident.environment == "production" and incident.deployment_related


def test_naive_timestamps_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Deployment(id="d", source="s", service="api", status="success", started_at=datetime(2026, 3, 2))
    (error,) = caught.value.errors()
    assert error["loc"] == ("started_at",)
    assert "timezone" in error["msg"]


def test_updated_at_is_optional_and_a_utc_time_like_the_others() -> None:
    incident = Incident.model_validate(
        {"id": "i", "source": "s", "service": "api", "started_at": "2026-03-02T01:00:00Z",
         "updated_at": "2026-03-02T03:00:00+02:00"}
    )  # fmt: skip
    assert incident.updated_at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert Change(id="c", source="s", service="api", committed_at=incident.started_at).updated_at is None
    with pytest.raises(ValidationError) as caught:
        Change(id="c", source="s", service="api", committed_at=incident.started_at, updated_at=datetime(2026, 3, 2))
    assert [error["loc"] for error in caught.value.errors()] == [("updated_at",)]


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Deployment.model_validate(
            {"id": "d", "source": "s", "service": "api", "status": "deployed", "started_at": "2026-03-02T00:00:00Z"}
        )
    (error,) = caught.value.errors()
    assert error["loc"] == ("status",)
    assert "'success', 'failure', 'cancelled' or 'running'" in error["msg"]


def test_wrong_types_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Change.model_validate({"id": "c", "source": "s", "service": "api", "committed_at": "yesterday", "author": "me"})
    assert {error["loc"] for error in caught.value.errors()} == {("committed_at",), ("author",)}


def test_empty_identifiers_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Change(id="", source="s", service="api", committed_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert caught.value.errors()[0]["loc"] == ("id",)


def test_list_fields_are_bounded_naming_the_field() -> None:
    base = {"id": "d", "source": "s", "service": "api", "status": "success", "started_at": "2026-03-02T10:00:00Z"}
    at_limit = {"change_ids": [f"c{index}" for index in range(MAX_CHANGE_IDS)], "labels": _labels(MAX_LABELS)}
    assert len(Deployment.model_validate({**base, **at_limit}).change_ids) == MAX_CHANGE_IDS
    over = {"change_ids": [*at_limit["change_ids"], "one-more"], "labels": _labels(MAX_LABELS + 1)}
    with pytest.raises(ValidationError) as caught:
        Deployment.model_validate({**base, **over})
    assert {error["loc"] for error in caught.value.errors()} == {("change_ids",), ("labels",)}
    assert {error["type"] for error in caught.value.errors()} == {"too_long"}


def _labels(count: int) -> dict[str, str]:
    return {f"k{index}": "v" for index in range(count)}
