"""Every error MetricHub raises on purpose is a MetricHubError: one ``except`` catches them all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import metrichub_core
from metrichub_core import Incident, MetricHub, MetricHubError
from metrichub_core.config import Settings, load_settings

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def test_every_exported_exception_is_a_metrichub_error() -> None:
    exported = [getattr(metrichub_core, name) for name in metrichub_core.__all__]
    exceptions = [item for item in exported if isinstance(item, type) and issubclass(item, BaseException)]
    assert len(exceptions) >= 15
    assert [error.__name__ for error in exceptions if not issubclass(error, MetricHubError)] == []


async def _resolve_before_start(hub: MetricHub) -> None:
    await hub.ingest([Incident(id="i1", source="pager", service="api", started_at=T0)])
    await hub.resolve_incident("i1", resolved_at=T0 - timedelta(hours=1))


async def _resolve_unknown(hub: MetricHub) -> None:
    await hub.resolve_incident("nope")


async def _collect_unknown(hub: MetricHub) -> None:
    await hub.collect(["nope"])


async def _dora_bad_window(hub: MetricHub) -> None:
    await hub.dora(since=T0, until=T0 - timedelta(days=1))


async def _dora_unknown_profile(hub: MetricHub) -> None:
    await hub.dora(profile="dora-1999")


async def _dora_bad_option(hub: MetricHub) -> None:
    await hub.dora(options={"colour": "red"})


async def _source_with_a_bad_table(hub: MetricHub) -> None:
    hub.source("broken")


CALLS: dict[str, Callable[[MetricHub], Awaitable[Any]]] = {
    "resolve before start": _resolve_before_start,
    "resolve unknown incident": _resolve_unknown,
    "collect unknown source": _collect_unknown,
    "dora window backwards": _dora_bad_window,
    "dora unknown profile": _dora_unknown_profile,
    "dora unknown option": _dora_bad_option,
    "source at fault": _source_with_a_bad_table,
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_the_hubs_refusals_are_metrichub_errors(call: Callable[[MetricHub], Awaitable[Any]]) -> None:
    settings = Settings(sources={"broken": {"kind": "demo", "days": "many"}})
    async with MetricHub("memory://", settings=settings) as hub:
        with pytest.raises(MetricHubError):
            await call(hub)


def test_configuration_and_storage_refusals_are_metrichub_errors(tmp_path: Path) -> None:
    broken = tmp_path / "metrichub.toml"
    broken.write_text("storage = [unclosed\n", encoding="utf-8")
    with pytest.raises(MetricHubError):
        load_settings(broken)
    with pytest.raises(MetricHubError):
        MetricHub("mongodb://elsewhere")
