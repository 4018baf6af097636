"""GET /api/v1/metrics/dora (cached demo report) versus a bare Starlette JSON endpoint, both on uvicorn.

Each server runs in its own process on 127.0.0.1, served the same way (uvicorn, one
worker, no access log); the same keep-alive load generator drives each with N
concurrent connections for D seconds in all, alternating between them in short
slices (after a one-second warm-up each) so both see the same background load. Prints requests per
second, latency percentiles, the throughput ratio (goal >= 50 %) and the report's p99
(goal <= 50 ms).

    .venv/bin/python benchmarks/api_bench.py [--duration 10] [--concurrency 50] [--days 180]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def report(request):
    return JSONResponse({"data": {"ok": True}, "trace_id": "bare"})

app = Starlette(routes=[Route("/{path:path}", report)])
"""
PATH = "/api/v1/metrics/dora?days=30"


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    first_error: str | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    def line(self) -> str:
        return (
            f"{self.name:<10} {self.throughput:8.0f} req/s  p50 {self.percentile(0.50):6.1f} ms  "
            f"p99 {self.percentile(0.99):6.1f} ms  ({self.requests} requests, {self.errors} errors)"
            + (f"; first error: {self.first_error}" if self.first_error else "")
        )


async def _client(host: str, port: int, path: str, stop: float, measure_from: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()
    try:
        while True:
            started = time.perf_counter()
            if started >= stop:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            finished = time.perf_counter()
            if started >= measure_from:
                if head.startswith(b"HTTP/1.1 200"):
                    result.requests += 1
                    result.latencies.append(finished - started)
                else:
                    result.errors += 1
                    result.first_error = result.first_error or head.split(b"\r\n", 1)[0].decode()
    finally:
        writer.close()


async def _slice(port: int, path: str, seconds: float, warm_up: float, concurrency: int, result: Result) -> None:
    now = time.perf_counter()
    stop, measure_from = now + warm_up + seconds, now + warm_up
    await asyncio.gather(*(_client("127.0.0.1", port, path, stop, measure_from, result) for _ in range(concurrency)))


async def _compare(
    ports: dict[str, int], path: str, duration: float, slices: int, concurrency: int
) -> dict[str, Result]:
    """Alternate the servers in short slices, so both see the same background load on a shared machine."""
    results = {name: Result(name, 0, 0, duration, []) for name in ports}
    for name, port in ports.items():  # connections, imports, the first (uncached) report
        await _slice(port, path, 0.0, 1.0, concurrency, results[name])
    for _ in range(slices):
        for name, port in ports.items():
            await _slice(port, path, duration / slices, 0.5, concurrency, results[name])
    return results


def _serve(command: list[str], log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    output = log.open("wb")
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if match:
            return process, int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server did not start:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--days", type=int, default=180, help="Demo history length.")
    parser.add_argument("--slices", type=int, default=5, help="Alternate the servers this many times.")
    parser.add_argument("--path", default=PATH, help=f"Request path and query (default {PATH}).")
    args = parser.parse_args()

    python = sys.executable
    metrichub = [python, "-c", "from metrichub_core.cli import main; main()"]
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("METRICHUB_CONFIG", None)
        storage = f"sqlite:///{directory / 'bench.db'}"
        subprocess.run([*metrichub, "demo", "--days", str(args.days), "--storage", storage], check=True, env=env,
                       capture_output=True)  # fmt: skip
        (directory / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
        uvicorn_options = ["--host", "127.0.0.1", "--port", "0", "--no-access-log", "--log-level", "info"]
        servers = {
            "bare": [python, "-m", "uvicorn", "--app-dir", str(directory), "bare_app:app", *uvicorn_options],
            "metrichub": [
                *metrichub,
                "serve",
                "--storage",
                storage,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-access-log",
            ],
        }
        processes, ports = {}, {}
        try:
            for name, command in servers.items():
                processes[name], ports[name] = _serve(command, directory / f"{name}.log", env)
            results = asyncio.run(_compare(ports, args.path, args.duration, args.slices, args.concurrency))
        finally:
            for process in processes.values():
                _stop(process)
        for name, result in results.items():
            print(result.line(), flush=True)
            if result.errors:
                print((directory / f"{name}.log").read_text(errors="replace")[-3000:], file=sys.stderr)

    bare, hub = results["bare"], results["metrichub"]
    ratio = hub.throughput / bare.throughput
    p99 = hub.percentile(0.99)
    print(f"\nGET {args.path}: {args.concurrency} concurrent clients, {args.duration:g} s, demo {args.days} days")
    print(f"throughput ratio metrichub/bare: {ratio:.1%} (goal >= 50 %): {'PASS' if ratio >= 0.5 else 'FAIL'}")
    print(f"metrichub p99: {p99:.1f} ms (goal <= 50 ms): {'PASS' if p99 <= 50 else 'FAIL'}")


if __name__ == "__main__":
    main()
