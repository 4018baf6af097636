"""Concurrent versus one-at-a-time collection, against a fake upstream that adds latency.

8 sources each page through 2,000 items (100 per page) served by a local
``FakeUpstream`` that adds 50 ms to every request. The same hub collects them all
concurrently, then one source at a time, in the same run; the fake server checks
that no source ever exceeded its configured ``rate_limit_per_second`` in any
one-second window.

    .venv/bin/python benchmarks/collect_bench.py [--sources 8] [--items 2000] [--latency 0.05] [--rate 10]

Goal: concurrent >= 5x faster than sequential, rate limit never exceeded. Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from metrichub_core import MetricHub
from metrichub_core.config import Settings
from metrichub_core.plugins import PluginHost
from metrichub_core.storage.base import EventQuery
from metrichub_core.testing import sample
from metrichub_core.testing.sample import sample_items
from metrichub_core.testing.upstream import FakeUpstream, max_requests_in_window


def make_hub(db: Path, upstream: FakeUpstream, sources: int, rate: float) -> MetricHub:
    host = PluginHost.load(entry_point_group=None)
    host.register(sample, "sample")
    policy = {"rate_limit_per_second": rate, "timeout_seconds": 10}
    tables = {
        f"s{n}": {"kind": "sample", "base_url": upstream.url, "path": f"/s{n}/deployments", "page_size": 100,
                  "policy": policy}
        for n in range(sources)
    }  # fmt: skip
    return MetricHub(f"sqlite:///{db}", settings=Settings(sources=tables), plugins=host)


async def run(mode: str, db: Path, upstream: FakeUpstream, sources: int, items: int, rate: float) -> float:
    async with make_hub(db, upstream, sources, rate) as hub:
        started = time.perf_counter()
        if mode == "concurrent":
            results = await hub.collect()
        else:
            results = [result for n in range(sources) for result in await hub.collect([f"s{n}"])]
        elapsed = time.perf_counter() - started
        failed = [result for result in results if not result.ok]
        if failed:
            raise SystemExit(f"{mode}: collection failed: {failed}")
        for n in range(sources):
            page = await hub.storage.list_events(EventQuery(kind="deployment", source=f"s{n}", limit=items + 1))
            if len(page.items) != items:
                raise SystemExit(f"{mode}: s{n} stored {len(page.items)} of {items} items")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=8)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument(
        "--rate", type=float, default=10.0, help="rate_limit_per_second of each source (the default policy)"
    )
    args = parser.parse_args()

    worst_rate = 0
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream(latency=args.latency) as upstream:
        for n in range(args.sources):
            upstream.pages(f"/s{n}/deployments", sample_items(args.items, prefix=f"s{n}-"), page_size=100)
        for mode in ("concurrent", "sequential"):
            upstream.requests.clear()
            timings[mode] = asyncio.run(run(mode, Path(tmp) / f"{mode}.db", upstream, args.sources, args.items,
                                            args.rate))  # fmt: skip
            for n in range(args.sources):
                arrivals = [request.at for request in upstream.requests_for(f"/s{n}/deployments")]
                worst_rate = max(worst_rate, max_requests_in_window(arrivals, 1.0))
            print(f"{mode:<11} {timings[mode]:6.2f}s  ({len(upstream.requests)} requests)")

    pages = args.sources * -(-args.items // 100)
    ratio = timings["sequential"] / timings["concurrent"]
    print(f"{args.sources} sources x {args.items} items, {pages} pages, +{args.latency * 1000:.0f} ms/request")
    print(f"speed-up: {ratio:.1f}x (goal >= 5x)")
    print(f"most requests one source sent in any 1 s window: {worst_rate} (limit {args.rate:g}/s)")
    ok = ratio >= 5 and worst_rate <= args.rate
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
