"""Every label value of every metric comes from a bounded set, whatever method, path or status a client sends."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from metrichub_core.api.prometheus import HTTP_METHODS, method_label
from metrichub_core.api.routes import OPERATIONS


def label_values(text: str) -> Iterator[tuple[str, str, str]]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, value in sample.labels.items():
                yield sample.name, name, value


async def _abuse(client: httpx.AsyncClient, rng: random.Random, count: int) -> None:
    paths = ["/api/v1/health", "/api/v1/deployments", "/api/v1/sources/x/health", "/no/such/route"]
    for _ in range(count):
        method = "".join(rng.choices(string.ascii_uppercase + "!#$%&'*+-.^_`|~", k=rng.randint(1, 16)))
        path = rng.choice(paths) + "/" + "".join(rng.choices(string.ascii_lowercase, k=8)) * rng.randint(0, 1)
        await client.request(method, path)


async def test_random_methods_add_no_label_values(app: Starlette, client: httpx.AsyncClient) -> None:
    rng = random.Random(2)
    await _abuse(client, rng, 300)
    await client.get("/metrics")  # its own series, counted once it has answered
    before = (await client.get("/metrics")).text
    await _abuse(client, rng, 300)
    after = (await client.get("/metrics")).text

    # 300 more random methods and paths: the same series (only their counts moved); today each adds one.
    assert len(after.splitlines()) == len(before.splitlines())
    templates = {operation.path for operation in OPERATIONS} | {"unmatched"}
    allowed = {
        "method": HTTP_METHODS | {"OTHER"},
        "route": templates,
        "result": {"hit", "miss", "stale"},
        # Configured sources only (webhooks and collections of unknown ids are refused before counting).
        "source": {source.id for source in app.state.metrichub.hub.sources},
        "kind": {source.kind for source in app.state.metrichub.hub.sources} | {"deployment", "change", "incident"},
        "via": {"api", "resolve", "webhook"},
        "outcome": {"rejected", "duplicate", "invalid", "stored", "ignored", "succeeded", "failed"},
    }
    for sample, name, value in label_values(after):
        if name in allowed:
            assert value in allowed[name], (sample, name, value)
        elif name == "status":
            assert value.isdigit() and 100 <= int(value) <= 599, (sample, value)
        elif name not in {"le", "version"}:
            raise AssertionError(f"{sample} has a label {name!r} this test does not bound: add it")
    assert 'method="OTHER"' in after


def test_method_label() -> None:
    assert [method_label(name) for name in ("GET", "POST", "DELETE", "get", "PROPFIND", "X" * 100)] == [
        "GET",
        "POST",
        "DELETE",
        "OTHER",
        "OTHER",
        "OTHER",
    ]
