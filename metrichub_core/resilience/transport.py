"""``ResilientTransport``: every policy, applied to every request a source sends.

One attempt runs, in order: the header budget's pause, the circuit breaker, the
concurrency cap, the pacing limiter, the request itself (body read in full), then
classification. tenacity retries failed attempts with exponential backoff and
jitter, or with exactly the wait the server asked for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
import pybreaker
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from metrichub_core.resilience.budget import Budget
from metrichub_core.resilience.cache import CACHE_EXTENSION, CacheControl, HttpCache
from metrichub_core.resilience.errors import (
    CircuitOpen,
    HTTPLayerError,
    RateLimitWaitTooLong,
    RetriesExhausted,
    safe_url,
)
from metrichub_core.resilience.hints import is_rate_limited, retry_after_seconds, server_wait_seconds
from metrichub_core.resilience.policy import Policy
from metrichub_core.resilience.stats import CollectorStats

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "OpeningTime",
    "ResilientTransport",
    "breaker_retry_in",
    "not_an_outage",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({408, 500, 502, 503, 504, *range(520, 531)})
# Requests leave evenly spaced, 10% under the configured rate: an upstream that
# counts arrivals in any one-second window never sees more than
# ``rate_limit_per_second`` even when connection setup or a stalled host shifts
# arrival times by up to ~100 ms.
PACING_MARGIN = 1.1
_KEPT_EXTENSIONS = ("http_version", "reason_phrase")

Sleep = Callable[[float], Awaitable[None]]


class _UpstreamFailure(Exception):
    """A retryable status (5xx, 408): counts as a failure for the breaker."""

    def __init__(self, response: httpx.Response, wait: float | None = None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.wait = wait  # a 503's Retry-After


class _RateLimited(Exception):
    """429 or a rate-limit 403: retried after the server's wait; not an outage."""

    def __init__(self, response: httpx.Response, wait: float | None) -> None:
        super().__init__(f"HTTP {response.status_code} (rate limited)")
        self.response = response
        self.wait = wait


def not_an_outage(exc: BaseException) -> bool:
    """Errors the breaker must not count: rate limits, over-long waits, cancellation."""
    return isinstance(exc, _RateLimited | RateLimitWaitTooLong | asyncio.CancelledError)


class ResilientTransport(httpx.AsyncBaseTransport):
    """Wraps ``inner`` (normally ``httpx.AsyncHTTPTransport``) with one source's policies.

    The breaker, budget and stats are shared by every transport of the source (they
    outlive a collection); the limiter and the concurrency cap belong to this
    transport and so to the event loop it runs on.
    """

    def __init__(
        self,
        *,
        source_id: str,
        policy: Policy,
        breaker: pybreaker.CircuitBreaker,
        stats: CollectorStats,
        budget: Budget,
        inner: httpx.AsyncBaseTransport | None = None,
        cache: HttpCache | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self.source_id = source_id
        self.policy = policy
        self.breaker = breaker
        self.stats = stats
        self.budget = budget
        self.cache = cache
        self._inner = inner or httpx.AsyncHTTPTransport(retries=0)
        self._sleep = sleep
        self._clock = clock
        self._logger = logger or logging.getLogger(f"metrichub.http.{source_id}")
        self._limiter = AsyncLimiter(1, PACING_MARGIN / policy.rate_limit_per_second)
        self._slots = asyncio.Semaphore(policy.max_concurrency)
        self._trial = asyncio.Lock()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # a POST body must be replayable across attempts
        control = _cache_control(request)
        cache_key = self._cache_key(request)
        if cache_key is not None and self.cache is not None and control is False:
            self.cache.discard(cache_key)  # a one-off URL: it takes no room in the cache
            cache_key = None
        etag_sent = False
        if cache_key is not None and self.cache is not None and "if-none-match" not in request.headers:
            etag = self.cache.etag_for(cache_key)
            if etag:
                request.headers["If-None-Match"] = etag
                etag_sent = True

        response = await self._with_retries(request)

        if cache_key is not None and self.cache is not None:
            if etag_sent and response.status_code == 304:
                replayed = self.cache.replay(cache_key, response)
                if replayed is not None:
                    self.stats.cache_hits += 1
                    return _attach(replayed, request)
            elif response.status_code == 200:
                if callable(control) and not _keep(control, response):
                    self.cache.discard(cache_key)
                else:
                    self.cache.store(cache_key, response, _raw_body(response))
        return response

    def _cache_key(self, request: httpx.Request) -> str | None:
        if request.method != "GET" or self.cache is None:
            return None
        return hashlib.sha256(str(request.url).encode()).hexdigest()  # URLs may carry tokens: keep only a digest

    async def _with_retries(self, request: httpx.Request) -> httpx.Response:
        idempotent = request.method in IDEMPOTENT_METHODS
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: _is_retryable(exc, idempotent)),
            before_sleep=lambda state: self._before_sleep(state, request),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._attempt(request)
        except RateLimitWaitTooLong:
            self.stats.failures += 1
            raise
        except (pybreaker.CircuitBreakerError, _UpstreamFailure, _RateLimited, httpx.TransportError) as exc:
            self.stats.failures += 1
            raise self._gave_up(exc, request, attempts) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        pause = self.budget.wait_seconds()
        if pause > 0:
            self._check_wait(pause, request, "the rate-limit budget is exhausted")
            self.stats.rate_limit_waits += 1
            self.stats.rate_limit_wait_seconds += pause
            self._logger.warning("%s: rate-limit budget exhausted; pausing %.2fs", self.source_id, pause)
            await self._sleep(pause)
        if self.breaker.current_state == "closed":
            return await self._guarded(request)
        async with self._trial:  # open or half-open: one trial request at a time, not a stampede
            return await self._guarded(request)

    async def _guarded(self, request: httpx.Request) -> httpx.Response:
        with self.breaker.calling():
            async with self._slots:
                await self._limiter.acquire()
                self.stats.requests += 1
                upstream = await self._inner.handle_async_request(request)
                try:
                    raw = b"".join([chunk async for chunk in upstream.aiter_raw()])
                finally:
                    await upstream.aclose()
            response = httpx.Response(
                upstream.status_code,
                headers=upstream.headers,
                stream=httpx.ByteStream(raw),
                extensions={key: upstream.extensions[key] for key in _KEPT_EXTENSIONS if key in upstream.extensions},
                request=request,
            )
            self.stats.count_response(response.status_code)
            self.budget.update(response)
            body = response.read() if response.status_code == 403 else b""
            if is_rate_limited(response, body):
                wait = server_wait_seconds(response, self._clock())
                if wait is not None:
                    self._check_wait(wait, request, f"HTTP {response.status_code} asks")
                raise _RateLimited(response, wait)
            if response.status_code in RETRY_STATUSES:
                wait = retry_after_seconds(response.headers, self._clock())
                if wait is not None:
                    self._check_wait(wait, request, f"HTTP {response.status_code} asks")
                raise _UpstreamFailure(response, wait)
            return response

    def _check_wait(self, wait: float, request: httpx.Request, why: str) -> None:
        if wait > self.policy.max_wait_seconds:
            raise RateLimitWaitTooLong(
                f"source {self.source_id!r}: {request.method} {safe_url(request.url)}: {why} for a wait of "
                f"{wait:.0f}s, beyond max_wait_seconds={self.policy.max_wait_seconds:g}; giving up instead of sleeping",
                request=request,
                wait_seconds=wait,
            )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _RateLimited | _UpstreamFailure) and exc.wait is not None:
            return exc.wait  # the server's wait, exactly: jitter would only lengthen it
        policy = self.policy
        base: float = min(
            policy.backoff_max_seconds, policy.backoff_initial_seconds * 2.0 ** (state.attempt_number - 1)
        )
        return base * random.uniform(0.5, 1.0)

    def _before_sleep(self, state: RetryCallState, request: httpx.Request) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        sleep = state.upcoming_sleep
        if isinstance(exc, _RateLimited):
            self.stats.rate_limit_waits += 1
            self.stats.rate_limit_wait_seconds += sleep
        reason = _reason(exc) if exc is not None else "failed"
        self._logger.warning(
            "%s: %s %s: %s; retry %d/%d in %.2fs",
            self.source_id,
            request.method,
            safe_url(request.url),
            reason,
            state.attempt_number,
            self.policy.retries,
            sleep,
        )

    def _gave_up(self, exc: Exception, request: httpx.Request, attempts: int) -> HTTPLayerError:
        """The one place where what ended a request's retries becomes a MetricHub error."""
        where = f"{request.method} {safe_url(request.url)}"
        if isinstance(exc, pybreaker.CircuitBreakerError):
            return self._circuit_open(exc, request, where)
        for kind, describe in _GAVE_UP:
            if isinstance(exc, kind):
                reason, status = describe(exc, self.policy)
                message = f"{where}: {reason} after {attempts} attempt(s)"
                return RetriesExhausted(message, request=request, attempts=attempts, status_code=status)
        raise TypeError(f"no translation for {type(exc).__name__}")  # _with_retries catches only mapped types

    def _circuit_open(self, exc: pybreaker.CircuitBreakerError, request: httpx.Request, where: str) -> CircuitOpen:
        retry_in = breaker_retry_in(self.breaker)
        after = "" if retry_in is None else f"; next try allowed in {retry_in:.1f}s"
        cause = exc.__context__
        if isinstance(cause, Exception):  # this attempt failed and tripped the breaker
            message = (
                f"{where}: {_reason(cause)}; source {self.source_id!r}: circuit breaker opened after "
                f"{self.breaker.fail_max} consecutive failures{after}"
            )
        else:
            self.stats.short_circuited += 1
            message = (
                f"source {self.source_id!r}: circuit breaker open after {self.breaker.fail_max} consecutive "
                f"failures, {where} not sent{after}"
            )
        return CircuitOpen(message, request=request, retry_in_seconds=retry_in)


class OpeningTime(pybreaker.CircuitBreakerListener):
    """Remembers when its breaker last opened, through pybreaker's public listener hook."""

    def __init__(self) -> None:
        self.opened_at: float | None = None

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self.opened_at = time.time()


def breaker_retry_in(breaker: pybreaker.CircuitBreaker) -> float | None:
    """Seconds until an open breaker lets a trial request through; ``None`` unless it is open.

    Needs an ``OpeningTime`` among the breaker's listeners (``SourceResilience`` adds one).
    """
    if breaker.current_state != pybreaker.STATE_OPEN:
        return None
    for listener in breaker.listeners:
        if isinstance(listener, OpeningTime) and listener.opened_at is not None:
            return max(0.0, float(breaker.reset_timeout) - (time.time() - listener.opened_at))
    return None


def _status(exc: _UpstreamFailure | _RateLimited) -> int:
    return exc.response.status_code


_GAVE_UP: list[tuple[type[Exception], Callable[[Any, Policy], tuple[str, int | None]]]] = [
    (_UpstreamFailure, lambda exc, policy: (f"HTTP {_status(exc)}", _status(exc))),
    (_RateLimited, lambda exc, policy: (f"still rate limited (HTTP {_status(exc)})", _status(exc))),
    (
        httpx.TimeoutException,
        lambda exc, policy: (f"timed out ({type(exc).__name__}, timeout {policy.timeout_seconds:g}s)", None),
    ),
    (httpx.TransportError, lambda exc, policy: (type(exc).__name__, None)),
]
"""Why the retries ended, as (reason, HTTP status), by the type of the last error; the first match wins."""


def _is_retryable(exc: BaseException, idempotent: bool) -> bool:
    if isinstance(exc, _RateLimited):
        return True  # the server refused before doing anything
    if isinstance(exc, _UpstreamFailure):
        return idempotent  # a 5xx POST may have been processed
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True  # nothing reached the server: safe for any method
    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return idempotent
    return False


def _cache_control(request: httpx.Request) -> CacheControl:
    control = request.extensions.get(CACHE_EXTENSION, True)
    if control is None:
        return True
    if isinstance(control, bool):
        return control
    if callable(control):
        return cast(Callable[[httpx.Response], bool], control)
    raise TypeError(f"extensions[{CACHE_EXTENSION!r}] must be a bool or a callable, got {type(control).__name__}")


def _keep(control: Callable[[httpx.Response], bool], response: httpx.Response) -> bool:
    response.read()  # the body is in memory already: the predicate may look at it
    return bool(control(response))


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _UpstreamFailure | _RateLimited) else type(exc).__name__


def _raw_body(response: httpx.Response) -> bytes:
    stream = response.stream
    if isinstance(stream, httpx.ByteStream):
        return b"".join(stream)
    return response.content


def _attach(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    response.request = request
    return response
