"""The connection pool: psycopg's, with prompt reconnection after an outage.

psycopg_pool retries a lost connection with exponential backoff (1, 2, 4, ... 128 s),
so a server back from a two-minute outage could wait a minute for the next attempt
while requests time out. MetricHub's pool retries every 0.5 to 2 seconds instead: an
outage lasts as long as the server's, plus at most two seconds.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

__all__ = ["Connection", "RecoveringPool"]

Connection = AsyncConnection[TupleRow]

MAX_RECONNECT_DELAY = 2.0


class _PromptAttempt(AttemptWithBackoff):
    INITIAL_DELAY = 0.5
    DELAY_BACKOFF = 1.5

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, MAX_RECONNECT_DELAY)


class RecoveringPool(AsyncConnectionPool[Connection]):
    """An ``AsyncConnectionPool`` whose reconnection attempts are at most ``MAX_RECONNECT_DELAY`` apart."""

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _PromptAttempt(timeout=self.reconnect_timeout), growing)
