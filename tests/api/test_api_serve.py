"""End to end: a real ``metrichub serve`` process on loopback, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from metrichub_core.testing.served import METRICHUB, ServedProcess, check_every_worker_sees_writes

API_TOKEN = "e2e-api-token-77aa1b"
SOURCE_TOKEN = "e2e-source-token-5c3d"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedProcess]:
    config = tmp_path / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "e2e.db"}"\n'
        "[api]\n"
        'tokens = ["${E2E_API_TOKEN}"]\n'
        "[sources.demo-src]\n"
        'kind = "demo"\n'
        "days = 20\n"
        "schedule_minutes = 60\n",
        encoding="utf-8",
    )
    env = {"E2E_API_TOKEN": API_TOKEN}
    command = [*METRICHUB, "demo", "--days", "40", "--config", str(config)]
    subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True, timeout=120)
    with ServedProcess(config, env=env, arguments=()) as server:
        yield server


@pytest.mark.slow
def test_serve_end_to_end(served: ServedProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        health = client.get("/api/v1/health", headers={"X-Request-ID": "e2e-1"})
        assert health.status_code == 200 and health.headers["x-request-id"] == "e2e-1"
        assert client.get("/api/v1/health/storage").json()["data"]["backend"] == "sqlite"

        # Never collected before, the scheduled source is collected at startup; its batches
        # empty the DORA cache, so the cache checks below wait for it to finish.
        deadline = time.monotonic() + 30
        while True:
            sources = client.get("/api/v1/sources").json()["data"]
            assert [(source["id"], source["schedule_minutes"]) for source in sources] == [("demo-src", 60)]
            if sources[0]["last_run"] is not None and not sources[0]["running"]:
                break
            assert time.monotonic() < deadline, sources
            time.sleep(0.1)
        assert sources[0]["last_run"]["ok"] is True and sources[0]["last_success_at"] is not None

        report = client.get("/api/v1/metrics/dora", params={"service": "checkout", "days": 14})
        assert report.status_code == 200 and report.headers["x-cache"] == "miss"
        assert report.json()["data"]["deployment_frequency"]["count"] > 0
        assert (
            client.get("/api/v1/metrics/dora", params={"service": "checkout", "days": 14}).headers["x-cache"] == "hit"
        )
        trend = client.get("/api/v1/metrics/dora/trend", params={"bucket": "week", "days": 28}).json()["data"]
        assert len(trend["points"]) >= 4

        change = {"id": "e2e-c", "source": "e2e", "service": "checkout", "committed_at": "2026-03-01T00:00:00Z"}
        assert client.post("/api/v1/changes", json=change).status_code == 401
        assert client.post("/api/v1/changes", json=change, headers={"Authorization": "Bearer no"}).status_code == 403
        stored = client.post("/api/v1/changes", json=change, headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert stored.json()["data"] == {"kind": "change", "ingested": 1}
        assert client.get("/api/v1/changes", params={"source": "e2e"}).json()["data"]["items"][0]["id"] == "e2e-c"

        collected = client.post(
            "/api/v1/sources/demo-src/collect?wait=true", headers={"Authorization": f"Bearer {API_TOKEN}"}
        ).json()["data"]
        assert collected["status"] == "succeeded" and collected["events"] > 0
        assert client.post("/api/v1/webhooks/demo-src", content=b"{}").status_code == 404

        too_big = client.post("/api/v1/changes", content=b"[" + b" " * 2_000_000 + b"]")
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"

        assert client.get("/openapi.json").json()["openapi"] == "3.1.0"
        metrics = client.get("/metrics").text
        assert 'metrichub_dora_deployments{environment="production",service="checkout"}' in metrics
        assert "<title>MetricHub" in client.get("/").text

    # uvicorn shuts down gracefully, then re-raises the signal for the usual exit status.
    assert served.stop() in (0, -signal.SIGTERM)
    output = served.output()
    assert "Application shutdown complete" in output
    assert "GET /api/v1/metrics/dora 200" in output
    assert API_TOKEN not in output and SOURCE_TOKEN not in output


@pytest.mark.slow
def test_serve_with_workers_schedules_once(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    config.write_text(
        f'storage = "sqlite:///{tmp_path / "workers.db"}"\n'
        '[sources.demo-src]\nkind = "demo"\ndays = 5\nschedule_minutes = 60\n',
        encoding="utf-8",
    )
    with ServedProcess(config, workers=2) as served:
        deadline = time.monotonic() + 60
        while "(schedule) finished" not in served.output():
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.2)
        with httpx.Client(base_url=served.url, timeout=10) as client:
            for _ in range(6):
                assert client.get("/api/v1/metrics/dora", params={"days": 5}).status_code == 200
        time.sleep(1)
        assert served.output().count("(schedule) finished") == 1, served.output()


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "metrichub.toml"
    config.write_text('[api]\nmax_body_bytes = "lots"\n', encoding="utf-8")
    result = subprocess.run(
        [*METRICHUB, "serve", "--config", str(config), "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "api.max_body_bytes" in result.stderr


def test_serve_refuses_memory_storage_with_workers(tmp_path: Path) -> None:
    result = subprocess.run(
        [*METRICHUB, "serve", "--storage", "memory://", "--workers", "2", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "memory://" in result.stderr


@pytest.mark.slow
def test_every_worker_sees_a_write_from_anywhere_within_a_second(tmp_path: Path) -> None:
    """Two workers, a separate ``metrichub collect`` and a POST to one worker: every next report shows them."""
    config = tmp_path / "metrichub.toml"
    config.write_text(f'storage = "sqlite:///{tmp_path / "shared.db"}"\n[sources.demo]\nkind = "demo"\ndays = 10\n')
    check_every_worker_sees_writes(config)
