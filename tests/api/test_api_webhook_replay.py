"""End to end against a real ``metrichub serve``: a captured signed delivery replayed cannot rewind data,
and a delivery id is processed once by all workers together, across a restart.

The deliveries are GitHub's own ``issues`` example (``issues.opened.json``), signed here with the
source's secret, as an attacker replaying a captured delivery would send them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from metrichub_core.testing.served import ServedProcess

pytest.importorskip("metrichub_plugin_github")

HOOKS = Path(__file__).parents[2] / "plugins" / "github" / "tests" / "fixtures" / "webhooks"
SECRET = "replay-e2e-secret-31f9"


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "replay.db"}"\n'
        "[sources.gh]\n"
        'kind = "github"\n'
        'token = "ghp_unused"\n'
        'repositories = ["Codertocat/Hello-World"]\n'
        'incident_label = "bug"\n'  # GitHub's example issue is labelled "bug"
        f'webhook_secret = "{SECRET}"\n',
        encoding="utf-8",
    )
    return config


def _opened() -> bytes:
    return (HOOKS / "issues.opened.json").read_bytes()


def _closed() -> bytes:
    """The same issue closed a minute later: what GitHub changes when an issue is closed."""
    payload: dict[str, Any] = json.loads(_opened())
    payload["action"] = "closed"
    payload["issue"].update(state="closed", closed_at="2019-05-15T15:21:18Z", updated_at="2019-05-15T15:21:18Z")
    return json.dumps(payload).encode()


def _post(url: str, body: bytes, delivery: str) -> dict[str, Any]:
    headers = {
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }
    with httpx.Client(timeout=30) as client:  # a new connection each time: the kernel picks the worker
        answer = client.post(f"{url}/api/v1/webhooks/gh", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    ack: dict[str, Any] = answer.json()["data"]
    return ack


def _incident(url: str) -> dict[str, Any]:
    [incident] = httpx.get(f"{url}/api/v1/incidents", timeout=30).json()["data"]["items"]
    return incident  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_replayed_opened_delivery_does_not_reopen_a_closed_incident(tmp_path: Path) -> None:
    with ServedProcess(_config(tmp_path)) as served:
        assert _post(served.url, _opened(), "delivery-1")["events"] == 1
        assert _incident(served.url)["resolved_at"] is None
        assert _post(served.url, _closed(), "delivery-2")["events"] == 1
        assert _incident(served.url)["resolved_at"] == "2019-05-15T15:21:18Z"
        # The captured "opened", replayed under a new delivery id: signed, accepted, and older than what is stored.
        replay = _post(served.url, _opened(), "delivery-3-forged")
        assert (replay["duplicate"], replay["events"]) == (False, 1)
        incident = _incident(served.url)
        assert incident["resolved_at"] == "2019-05-15T15:21:18Z"
        assert incident["updated_at"] == "2019-05-15T15:21:18Z"
        # Under its own id it is a duplicate.
        assert _post(served.url, _opened(), "delivery-1")["duplicate"] is True


@pytest.mark.slow
def test_a_delivery_id_is_processed_once_by_all_workers_and_after_a_restart(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with ServedProcess(config, workers=2) as served:
        # Twelve connections at once, spread over both workers by the kernel, all with one id.
        with ThreadPoolExecutor(max_workers=12) as pool:
            acks = list(pool.map(lambda _: _post(served.url, _opened(), "same-id"), range(12)))
        assert sorted(ack["duplicate"] for ack in acks) == [False] + [True] * 11
        assert sum(ack["events"] for ack in acks) == 1
    with ServedProcess(config, workers=2) as restarted:
        assert _post(restarted.url, _opened(), "same-id")["duplicate"] is True
        assert _post(restarted.url, _closed(), "another-id")["duplicate"] is False
        assert _incident(restarted.url)["resolved_at"] == "2019-05-15T15:21:18Z"
