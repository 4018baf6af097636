"""A real ``metrichub serve`` process on 127.0.0.1, for tests and benchmarks that need real sockets.

with ServedProcess(config_path, workers=2) as served:
    httpx.get(f"{served.url}/api/v1/health")
    served.stop()  # SIGTERM, then wait (also done on leaving the block)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["METRICHUB", "ServedProcess", "check_every_worker_sees_writes"]

METRICHUB = [sys.executable, "-c", "from metrichub_core.cli import main; main()"]
"""The CLI as a command line, run by this interpreter (no console script needed)."""
_RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


class ServedProcess:
    """``metrichub serve --config <config> --port 0`` with its output in ``log``; ``url`` once it listens.

    ``start()`` returns when every worker has started its application. ``stop()`` sends
    SIGTERM and waits (killing it after ``grace_seconds``); it returns the exit code.
    """

    def __init__(
        self,
        config: Path,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        arguments: Sequence[str] = ("--no-access-log",),
        log: Path | None = None,
        grace_seconds: float = 30.0,
    ) -> None:
        self.config = config
        self.workers = workers
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.env.pop("METRICHUB_CONFIG", None)
        self.arguments = list(arguments)
        self.log = log or config.with_name("serve.log")
        self.grace_seconds = grace_seconds
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ServedProcess:
        command = [*METRICHUB, "serve", "--config", str(self.config), "--host", "127.0.0.1", "--port", "0"]
        command += ["--workers", str(self.workers), *self.arguments]
        with self.log.open("w") as output:
            self.process = subprocess.Popen(command, env=self.env, stdout=output, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text()
            match = _RUNNING.search(text)
            if match and text.count("Application startup complete") >= self.workers:
                self.url = match.group(1)
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not start within {timeout} s:\n{text}")
            time.sleep(0.1)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text()

    def __enter__(self) -> ServedProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def check_every_worker_sees_writes(config: Path, *, workers: int = 2, within_seconds: float = 1.0) -> None:
    """Serve ``config`` with ``workers``; a separate ``metrichub collect`` and a POST to one worker must show
    in every worker's next ``/metrics/dora`` within ``within_seconds``.

    ``config`` needs a ``[sources.demo]`` of kind ``demo`` and no schedule, on an empty storage.
    Each check opens 24 new connections, which the kernel spreads over the workers.
    """
    import httpx  # here: the module stays importable for tests that do not need it

    with ServedProcess(config, workers=workers) as served:

        def counts() -> set[int]:
            seen = set()
            for _ in range(24):
                with httpx.Client(base_url=served.url, timeout=10) as client:  # a new connection each time
                    answer = client.get("/api/v1/metrics/dora", params={"days": 30})
                    assert answer.status_code == 200, answer.text
                    seen.add(answer.json()["data"]["deployment_frequency"]["count"])
            return seen

        assert counts() == {0}
        assert counts() == {0}  # now cached in every worker
        command = [*METRICHUB, "collect", "demo", "--config", str(config), "-q"]
        collect = subprocess.run(command, env=served.env, capture_output=True, text=True, timeout=120)
        assert collect.returncode == 0, collect.stdout + collect.stderr
        time.sleep(within_seconds)
        (collected,) = counts()  # one answer from every worker, and not the cached zero
        assert collected > 0

        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        event = {"id": "posted-1", "source": "ci", "service": "checkout", "status": "success", "started_at": now}
        posted = httpx.post(f"{served.url}/api/v1/deployments", json=[{**event, "finished_at": now}], timeout=10)
        assert posted.status_code == 200, posted.text
        time.sleep(within_seconds)
        assert counts() == {collected + 1}
