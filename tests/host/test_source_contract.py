"""The kit's source contract, run against the kit's own sample source (as a plugin author would)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

import pytest

from metrichub_core.models import Event
from metrichub_core.testing.sample import SIGNATURE_HEADER, SampleSource, sample_items, sign
from metrichub_core.testing.source_contract import SourceContract
from metrichub_core.testing.upstream import FakeUpstream

ITEMS = sample_items(25)


class TestSampleSourceContract(SourceContract):
    source_class = SampleSource
    expected_keys: ClassVar[set[tuple[str, str]] | None] = {("deployment", item["id"]) for item in ITEMS}

    @pytest.fixture
    def upstream(self) -> Iterator[FakeUpstream]:
        with FakeUpstream() as upstream:
            upstream.pages("/deployments", ITEMS, page_size=10, since_field="updated_at")
            yield upstream

    def source_table(self, base_url: str) -> dict[str, Any]:
        return {"kind": "sample", "base_url": base_url, "token": "tok-secret", "webhook_secret": "whsec"}

    def webhook_delivery(self, table: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
        body = json.dumps(ITEMS[0]).encode()
        return {SIGNATURE_HEADER: sign(table["webhook_secret"], body)}, body


class BrokenIncremental(SampleSource):
    """Ignores ``since`` and yields one event twice under different ids: the contract must catch it."""

    kind = "sample"

    async def collect(self, since: datetime | None) -> AsyncIterator[Event]:
        async for event in super().collect(None):
            yield event
        if since is not None:
            yield event.model_copy(update={"id": "extra"})


async def test_the_contract_fails_a_source_that_duplicates_on_rerun() -> None:
    class _Broken(TestSampleSourceContract):
        source_class = BrokenIncremental

    contract = _Broken()
    with FakeUpstream() as upstream:
        upstream.pages("/deployments", ITEMS, page_size=10, since_field="updated_at")
        with pytest.raises(AssertionError, match="neither duplicates nor loses"):
            await contract.test_incremental_rerun(upstream)
