"""Errors the policy-wrapped HTTP client raises once its policies give up.

They subclass ``httpx.RequestError`` so plugin code that already handles httpx
errors keeps working, and their messages never carry headers, query strings or
credentials::

    MetricHubError, httpx.RequestError
    └── HTTPLayerError
        ├── RetriesExhausted      transient failures outlived the retry budget
        ├── RateLimitWaitTooLong  the server asked for a wait beyond ``max_wait_seconds``
        └── CircuitOpen           the source's breaker is open: no request was sent
"""

from __future__ import annotations

import httpx

from metrichub_core.errors import MetricHubError

__all__ = ["CircuitOpen", "HTTPLayerError", "RateLimitWaitTooLong", "RetriesExhausted", "safe_url"]


def safe_url(url: httpx.URL) -> str:
    """``scheme://host[:port]/path`` without credentials or query (which may hold tokens)."""
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


class HTTPLayerError(MetricHubError, httpx.RequestError):
    """Root of the resilience layer's errors."""


class RetriesExhausted(HTTPLayerError):
    """A request kept failing transiently (connection, timeout, 5xx, 429) until retries ran out."""

    def __init__(self, message: str, *, request: httpx.Request, attempts: int, status_code: int | None = None) -> None:
        super().__init__(message, request=request)
        self.attempts = attempts
        self.status_code = status_code


class RateLimitWaitTooLong(HTTPLayerError):
    """The upstream asked us to wait longer than the policy's ``max_wait_seconds``."""

    def __init__(self, message: str, *, request: httpx.Request, wait_seconds: float) -> None:
        super().__init__(message, request=request)
        self.wait_seconds = wait_seconds


class CircuitOpen(HTTPLayerError):
    """The source's circuit breaker is open; the request was not sent."""

    def __init__(self, message: str, *, request: httpx.Request, retry_in_seconds: float | None) -> None:
        super().__init__(message, request=request)
        self.retry_in_seconds = retry_in_seconds
