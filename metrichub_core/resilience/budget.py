"""A header-driven request budget: pause when the upstream says nothing remains."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from metrichub_core.resilience.hints import rate_limit_remaining, rate_limit_reset_in

__all__ = ["Budget"]


@dataclass
class Budget:
    """What the last response said about the rate-limit window (GitHub/GitLab headers).

    ``wait_seconds()`` is how long to pause before the next request: positive only
    when the remaining count hit zero and the reset lies ahead.
    """

    clock: Callable[[], float] = time.time
    remaining: int | None = None
    reset_at: float | None = None

    def update(self, response: httpx.Response) -> None:
        remaining = rate_limit_remaining(response.headers)
        if remaining is None:
            return
        now = self.clock()
        self.remaining = remaining
        reset_in = rate_limit_reset_in(response.headers, now)
        self.reset_at = None if reset_in is None else now + reset_in

    def wait_seconds(self) -> float:
        if self.remaining != 0 or self.reset_at is None:
            return 0.0
        wait = self.reset_at - self.clock()
        if wait <= 0:
            self.remaining, self.reset_at = None, None
            return 0.0
        return wait

    def as_dict(self) -> dict[str, float | int | None]:
        return {"remaining": self.remaining, "reset_at": self.reset_at}
