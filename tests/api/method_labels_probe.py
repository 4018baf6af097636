"""Measure ``/metrics`` after requests with random method tokens (issue #19 item 2), on a real server.

    .venv/bin/python tests/api/method_labels_probe.py [--requests 6000]

Serves an empty SQLite store with ``metrichub serve`` on 127.0.0.1, sends ``--requests`` requests
``<RANDOM> /api/v1/health`` over one keep-alive connection (stdlib ``http.client``), then prints the
size of ``/metrics`` and how long one scrape took.
"""

from __future__ import annotations

import argparse
import http.client
import random
import string
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from metrichub_core.testing.served import ServedProcess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6000)
    arguments = parser.parse_args()
    rng = random.Random(19)
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "metrichub.toml"
        config.write_text(f'storage = "sqlite:///{Path(directory) / "probe.db"}"\n', encoding="utf-8")
        with ServedProcess(config) as served:
            address = urlsplit(served.url)
            connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
            started = time.perf_counter()
            for _ in range(arguments.requests):
                method = "".join(rng.choices(string.ascii_uppercase, k=12))
                connection.request(method, "/api/v1/health")
                connection.getresponse().read()
            sent = time.perf_counter() - started
            scrape_started = time.perf_counter()
            connection.request("GET", "/metrics")
            body = connection.getresponse().read()
            scrape = time.perf_counter() - scrape_started
            connection.close()
    methods = {
        line.split('method="', 1)[1].split('"', 1)[0] for line in body.decode().splitlines() if 'method="' in line
    }
    print(
        f"{arguments.requests} requests in {sent:.1f} s; /metrics: {len(body):,} bytes, "
        f"{len(methods)} method label values, one scrape {scrape * 1000:.0f} ms",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
