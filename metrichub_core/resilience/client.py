"""``SourceResilience``: one source's breaker, budget and counters, and the clients built on them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pybreaker

from metrichub_core.resilience.budget import Budget
from metrichub_core.resilience.cache import HttpCache
from metrichub_core.resilience.policy import Policy
from metrichub_core.resilience.stats import CollectorStats
from metrichub_core.resilience.transport import (
    OpeningTime,
    ResilientTransport,
    Sleep,
    breaker_retry_in,
    not_an_outage,
)

__all__ = ["USER_AGENT", "SourceResilience"]

USER_AGENT = "metrichub"


class SourceResilience:
    """What outlives one collection of a source: its circuit breaker, budget and counters.

    ``client()`` builds the ``httpx.AsyncClient`` a ``SourceContext`` carries: a new
    one per collection (and so per event loop), sharing this object's state.

    Parameters:
        source_id: the configured id, used in errors and logs.
        policy: the source's ``[sources.<id>.policy]``.
        sleep, clock: injectable for tests.
    """

    def __init__(
        self,
        source_id: str,
        policy: Policy | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source_id = source_id
        self.policy = policy or Policy()
        self.stats = CollectorStats()
        self.budget = Budget(clock=clock)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=self.policy.breaker_fail_max,
            reset_timeout=self.policy.breaker_reset_seconds,
            exclude=[not_an_outage],
            listeners=[OpeningTime()],
            name=source_id,
        )
        self._sleep = sleep
        self._clock = clock

    def transport(
        self, *, inner: httpx.AsyncBaseTransport | None = None, cache: HttpCache | None = None
    ) -> ResilientTransport:
        return ResilientTransport(
            source_id=self.source_id,
            policy=self.policy,
            breaker=self.breaker,
            stats=self.stats,
            budget=self.budget,
            inner=inner,
            cache=cache,
            sleep=self._sleep,
            clock=self._clock,
            logger=logging.getLogger(f"metrichub.http.{self.source_id}"),
        )

    def client(
        self,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
        cache: HttpCache | None = None,
    ) -> httpx.AsyncClient:
        """An ``AsyncClient`` whose every request goes through this source's policies."""
        from metrichub_core import __version__

        all_headers = {"User-Agent": f"{USER_AGENT}/{__version__}", **(headers or {})}
        return httpx.AsyncClient(
            transport=self.transport(inner=inner, cache=cache),
            base_url=base_url,
            headers=all_headers,
            timeout=self.policy.timeout_seconds,
            follow_redirects=True,
        )

    def breaker_state(self) -> dict[str, Any]:
        """``{"state": "closed"|"open"|"half-open", "fail_counter", "fail_max", "retry_in_seconds"}``."""
        return {
            "state": self.breaker.current_state,
            "fail_counter": self.breaker.fail_counter,
            "fail_max": self.breaker.fail_max,
            "retry_in_seconds": breaker_retry_in(self.breaker),
        }

    def snapshot(self) -> dict[str, Any]:
        """Counters, breaker and budget as plain JSON-ready data."""
        return {"stats": self.stats.as_dict(), "breaker": self.breaker_state(), "budget": self.budget.as_dict()}
