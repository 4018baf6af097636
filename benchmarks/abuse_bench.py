"""What abusive-but-valid requests cost a real ``metrichub serve`` (issue 19), on loopback.

    .venv/bin/python benchmarks/abuse_bench.py [--days 3650] [--load-seconds 10] [--skip-methods]

Loads the demo history (ten years by default, ~48,640 events) into a fresh SQLite file,
serves it (one worker, ``request_timeout_seconds = 120`` so every computation runs to its
end) and measures, reading the server's CPU time from ``/proc/<pid>/stat``:

0. the first report, which derives the DORA tables of the demo's events (not counted below);
1. the labelled one-year daily trend (``/metrics/dora/trend?bucket=day&days=365&label=team=x``):
   wall time and the server's CPU seconds;
2. ``/api/v1/health`` latency (p50, max) polled every 50 ms while six clients ask such trends,
   each time with a new label value, for ``--load-seconds`` (each finishes its last request);
3. the size of ``/metrics`` after 6,000 requests with random method tokens;
4. one deployment with 10,000 ``change_ids`` (the models' limit): the first report after it
   (which derives it) and later reports of another service, labelled and not (cache misses).

To compare with another revision, run the same script with ``PYTHONPATH`` pointing at that
revision's checkout (the served process inherits it). Prints one line per figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from metrichub_core.testing.served import METRICHUB, ServedProcess

TREND = "/api/v1/metrics/dora/trend?bucket=day&days=365&label=team={}"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its waited-for children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / TICKS


def get(base: str, path: str, *, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes, float]:
    """``(status, body, seconds)`` of one request on a new connection (stdlib client)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, time.perf_counter() - started


def timed_trend(base: str, pid: int, label: str) -> None:
    cpu = cpu_seconds(pid)
    status, _, seconds = get(base, TREND.format(label))
    print(
        f"labelled 1-year daily trend (team={label}): {status} in {seconds:.2f} s, "
        f"server CPU {cpu_seconds(pid) - cpu:.2f} s"
    )


def concurrent_trends(base: str, pid: int, seconds: float) -> None:
    """Six clients asking labelled trends (each time a new label value: never cached) for at least
    ``seconds`` (each finishes the request it is in), while ``/api/v1/health`` is polled."""
    results: list[int] = []
    started = time.perf_counter()

    def client(name: str) -> None:
        for number in range(10_000):
            results.append(get(base, TREND.format(f"{name}{number}"))[0])
            if time.perf_counter() - started >= seconds:
                return

    workers = [threading.Thread(target=client, args=(name,)) for name in "abcdef"]
    cpu = cpu_seconds(pid)
    for worker in workers:
        worker.start()
    health: list[float] = []
    while any(worker.is_alive() for worker in workers) and time.perf_counter() - started < 300:
        health.append(get(base, "/api/v1/health")[2])
        time.sleep(0.05)
    for worker in workers:
        worker.join()
    took = time.perf_counter() - started
    print(
        f"six clients of labelled trends: {len(results)} answered ({sorted(set(results))}) in {took:.2f} s, "
        f"server CPU {cpu_seconds(pid) - cpu:.2f} s; /api/v1/health meanwhile: {len(health)} polls, "
        f"p50 {statistics.median(health) * 1000:.1f} ms, max {max(health) * 1000:.1f} ms"
    )


def random_methods(base: str, count: int) -> None:
    parts = urlsplit(base)
    print(f"/metrics before: {len(get(base, '/metrics')[1])} bytes")
    rng = random.Random(19)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    started = time.perf_counter()
    for _ in range(count):
        method = "".join(rng.choices(string.ascii_uppercase, k=12))
        try:
            conn.request(method, "/api/v1/health")
            conn.getresponse().read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.close()
    took = time.perf_counter() - started
    status, body, seconds = get(base, "/metrics")
    print(
        f"/metrics after {count} random methods ({took:.1f} s): {status}, {len(body)} bytes, "
        f"scraped in {seconds * 1000:.1f} ms"
    )


def huge_deployment(base: str, pid: int) -> None:
    now = datetime.now(UTC) - timedelta(days=2)
    moment = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    deployment = {
        "id": "huge-10000", "source": "bench", "service": "checkout", "status": "success",
        "started_at": moment, "finished_at": moment, "change_ids": [f"c{n}" for n in range(10_000)],
        "labels": {"team": "payments"},
    }  # fmt: skip
    status, _, seconds = get(base, "/api/v1/deployments", method="POST", body=json.dumps(deployment).encode())
    print(f"ingest one deployment with 10,000 change_ids: {status} in {seconds * 1000:.0f} ms")
    for what, path in (
        ("first report after it (derives it)", "/api/v1/metrics/dora?days=30&service=search"),
        ("report of another service", "/api/v1/metrics/dora?days=31&service=search"),
        ("labelled report of another service", "/api/v1/metrics/dora?days=30&service=search&label=team=discovery"),
        ("labelled report of its service", "/api/v1/metrics/dora?days=30&service=checkout&label=team=payments"),
    ):
        cpu = cpu_seconds(pid)
        status, _, seconds = get(base, path)
        print(f"  {what}: {status} in {seconds * 1000:.0f} ms, server CPU {cpu_seconds(pid) - cpu:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=3650)
    parser.add_argument("--skip-methods", action="store_true")
    parser.add_argument("--load-seconds", type=float, default=10.0, help="How long the six clients keep asking.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "metrichub.toml"
        config.write_text(
            f'storage = "sqlite:///{Path(directory) / "bench.db"}"\n[api]\nrequest_timeout_seconds = 120\n',
            encoding="utf-8",
        )
        command = [*METRICHUB, "demo", "--days", str(args.days), "--config", str(config)]
        subprocess.run(command, check=True, capture_output=True, timeout=600)
        print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}, demo of {args.days} days")
        with ServedProcess(config, grace_seconds=60) as served:
            assert served.process is not None
            pid = served.process.pid
            cpu = cpu_seconds(pid)
            status, _, seconds = get(served.url, "/api/v1/metrics/dora?days=1")
            print(
                f"first report (derives the demo's DORA tables): {status} in {seconds:.2f} s, "
                f"server CPU {cpu_seconds(pid) - cpu:.2f} s"
            )
            timed_trend(served.url, pid, "x")
            timed_trend(served.url, pid, "payments")
            concurrent_trends(served.url, pid, args.load_seconds)
            if not args.skip_methods:
                random_methods(served.url, 6000)
            huge_deployment(served.url, pid)
            started = time.perf_counter()
            code = served.stop()
            print(f"SIGTERM: exit {code} in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
