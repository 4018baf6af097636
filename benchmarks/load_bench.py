"""Sustained mixed load on ``metrichub serve --workers 2``: nothing lost, nothing doubled, no error.

For ``--seconds`` (default 60), ``--writers`` clients (20) POST batches of deployments to
``/api/v1/deployments`` (each batch new ids plus ids posted before, re-posted with a new
status) while ``--readers`` clients (20) GET ``/metrics/dora`` and ``/metrics/dora/trend``,
against SQLite and against PostgreSQL (a throwaway server, as ``pg_bench`` starts). It prints,
per backend: events acknowledged vs stored (must be equal), errors (must be 0), p50/p99 of
reads and of writes, and events/s. Then the same load again, with SIGTERM sent to the server
after ``--kill-after`` seconds: every acknowledged event must be stored, and every batch
stored whole or not at all.

Loopback only; every loop stops by itself.

    .venv/bin/python benchmarks/load_bench.py [--seconds 60] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from metrichub_core import MetricHub
from metrichub_core.storage.base import EventQuery
from metrichub_core.testing.served import ServedProcess

SOURCE = "load"
BATCH_NEW = 40
BATCH_REPOSTED = 10
READ_PATHS = ("/api/v1/metrics/dora?days=30", "/api/v1/metrics/dora/trend?days=90&bucket=week")


@dataclass
class Tally:
    acknowledged: set[str] = field(default_factory=set)
    unacknowledged_batches: list[list[str]] = field(default_factory=list)  # the new ids of each
    errors: list[str] = field(default_factory=list)
    write_seconds: list[float] = field(default_factory=list)
    read_seconds: list[float] = field(default_factory=list)
    events_posted: int = 0


def deployment(id_: str, status: str, moment: datetime) -> dict[str, object]:
    stamp = moment.isoformat().replace("+00:00", "Z")
    service = f"svc-{int(id_.split('-')[1]) % 5}"
    return {"id": id_, "source": SOURCE, "service": service, "status": status, "started_at": stamp,
            "finished_at": stamp, "change_ids": [f"c-{id_}"]}  # fmt: skip


async def writer(index: int, url: str, until: float, tally: Tally, stopping: bool) -> None:
    rng = random.Random(index)
    mine: list[str] = []
    sequence = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.monotonic() < until:
            new = [f"w{index}-{sequence + n}" for n in range(BATCH_NEW)]
            sequence += BATCH_NEW
            again = rng.sample(mine, min(BATCH_REPOSTED, len(mine)))
            moment = datetime.now(UTC) - timedelta(minutes=rng.randrange(60 * 24 * 20))
            body = [deployment(id_, "success", moment) for id_ in new]
            body += [deployment(id_, rng.choice(("success", "failure")), moment) for id_ in again]
            started = time.perf_counter()
            try:
                answer = await client.post("/api/v1/deployments", json=body)
            except httpx.HTTPError as exc:
                tally.unacknowledged_batches.append(new)
                if not stopping:
                    tally.errors.append(f"write: {type(exc).__name__}")
                await asyncio.sleep(0.05)
                continue
            tally.write_seconds.append(time.perf_counter() - started)
            if answer.status_code == 200:
                tally.acknowledged.update(new)
                tally.events_posted += len(body)
                mine.extend(new)
            else:
                tally.unacknowledged_batches.append(new)
                if not stopping:
                    tally.errors.append(f"write: {answer.status_code} {answer.text[:120]}")


async def reader(index: int, url: str, until: float, tally: Tally, stopping: bool) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        turn = index
        while time.monotonic() < until:
            turn += 1
            started = time.perf_counter()
            try:
                answer = await client.get(READ_PATHS[turn % len(READ_PATHS)])
            except httpx.HTTPError as exc:
                if not stopping:
                    tally.errors.append(f"read: {type(exc).__name__}")
                await asyncio.sleep(0.05)
                continue
            tally.read_seconds.append(time.perf_counter() - started)
            if answer.status_code != 200 and not stopping:
                tally.errors.append(f"read: {answer.status_code} {answer.text[:120]}")


async def load(url: str, seconds: float, writers: int, readers: int, *, stopping: bool = False) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(writer(index, url, until, tally, stopping) for index in range(writers)),
        *(reader(index, url, until, tally, stopping) for index in range(readers)),
    )
    return tally


async def stored_ids(storage_url: str) -> set[str]:
    ids: set[str] = set()
    async with MetricHub(storage_url) as hub:
        cursor: str | None = None
        while True:
            page = await hub.storage.list_events(
                EventQuery(kind="deployment", source=SOURCE, limit=1000, cursor=cursor)
            )
            ids.update(event.id for event in page.items)
            cursor = page.next_cursor
            if cursor is None:
                return ids


def latencies(label: str, seconds: list[float]) -> str:
    p50, p99 = percentile(seconds, 0.5), percentile(seconds, 0.99)
    return f"  {label:<7}{len(seconds):>7,}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def sustained(name: str, storage_url: str, directory: Path, arguments: argparse.Namespace) -> bool:
    config = directory / f"{name}.toml"
    config.write_text(f'storage = "{storage_url}"\n', encoding="utf-8")
    with ServedProcess(config, workers=2) as served:
        started = time.perf_counter()
        tally = await load(served.url, arguments.seconds, arguments.writers, arguments.readers)
        elapsed = time.perf_counter() - started
    stored = await stored_ids(storage_url)
    lost, extra = tally.acknowledged - stored, stored - tally.acknowledged
    print(f"{name}: {arguments.seconds:.0f} s, {arguments.writers} writers + {arguments.readers} readers, 2 workers")
    print(f"  events acknowledged (distinct ids) {len(tally.acknowledged):>9,}   stored {len(stored):>9,}"
          f"   lost {len(lost)}   not acknowledged but stored {len(extra)}")  # fmt: skip
    print(f"  errors {len(tally.errors)}" + (f" (first: {tally.errors[0]})" if tally.errors else ""))
    print(latencies("writes", tally.write_seconds) + f"   {tally.events_posted / elapsed:,.0f} events/s")
    print(latencies("reads", tally.read_seconds) + f"   {len(tally.read_seconds) / elapsed:,.0f} reads/s")
    return not lost and not extra and not tally.errors


async def terminated(name: str, storage_url: str, directory: Path, arguments: argparse.Namespace) -> bool:
    config = directory / f"{name}-term.toml"
    config.write_text(f'storage = "{storage_url}"\n', encoding="utf-8")
    served = ServedProcess(config, workers=2).start()
    try:
        running = asyncio.create_task(
            load(served.url, arguments.kill_after + 5, arguments.writers, arguments.readers, stopping=True)
        )
        await asyncio.sleep(arguments.kill_after)
        code = await asyncio.to_thread(served.stop)
        tally = await running
    finally:
        served.stop()
    stored = await stored_ids(storage_url)
    lost = tally.acknowledged - stored
    halves = [batch for batch in tally.unacknowledged_batches if 0 < len(stored.intersection(batch)) < len(batch)]
    whole = sum(1 for batch in tally.unacknowledged_batches if set(batch) <= stored)
    print(f"{name}: SIGTERM after {arguments.kill_after:.0f} s of load (exit code {code})")
    print(f"  acknowledged {len(tally.acknowledged):,}, all stored: {not lost} (lost {len(lost)});"
          f" unacknowledged batches {len(tally.unacknowledged_batches)}: {whole} stored whole,"
          f" {len(halves)} half-stored")  # fmt: skip
    return not lost and not halves


@contextlib.contextmanager
def storage_urls(backend: str, directory: Path) -> Iterator[list[tuple[str, str, str]]]:
    """``(name, url for the sustained run, url for the SIGTERM run)`` per backend."""
    urls: list[tuple[str, str, str]] = []
    with contextlib.ExitStack() as stack:
        if backend in ("sqlite", "both"):
            urls.append(("sqlite", f"sqlite:///{directory / 'load.db'}", f"sqlite:///{directory / 'term.db'}"))
        if backend in ("postgresql", "both"):
            from metrichub_plugin_postgres.testing import TemporaryServer

            server = stack.enter_context(TemporaryServer(durable=True))
            server.create_database("load")
            server.create_database("term")
            urls.append(("postgresql", server.url("load"), server.url("term")))
        yield urls


async def main(arguments: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="metrichub-load-") as temporary:
        directory = Path(temporary)
        ok = True
        with storage_urls(arguments.backend, directory) as urls:
            for name, load_url, term_url in urls:
                ok &= await sustained(name, load_url, directory, arguments)
                ok &= await terminated(name, term_url, directory, arguments)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--kill-after", type=float, default=5.0, help="seconds of load before the SIGTERM")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
