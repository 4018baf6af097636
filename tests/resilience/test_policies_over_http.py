"""Every policy, exercised over real HTTP against a local fake upstream."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable

import httpx
import pytest

from metrichub_core.resilience import CircuitOpen, RateLimitWaitTooLong, RetriesExhausted, SourceResilience
from metrichub_core.testing.upstream import FakeUpstream, Reply, max_requests_in_window, refused_url

Make = Callable[..., SourceResilience]


async def test_503_503_then_200_is_retried_to_success(upstream: FakeUpstream, resilience: Make) -> None:
    upstream.script("/x", Reply(503), Reply(503), Reply(200, json={"ok": True}))
    policies = resilience()
    async with policies.client(base_url=upstream.url) as http:
        response = await http.get("/x")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert len(upstream.requests_for("/x")) == 3
    assert policies.stats.retries == 2
    assert policies.stats.responses == {"503": 2, "200": 1}


async def test_429_retry_after_seconds_delays_the_next_request(upstream: FakeUpstream, resilience: Make) -> None:
    upstream.script("/x", Reply(429, headers={"Retry-After": "1"}), Reply(200, json=[]))
    policies = resilience()
    async with policies.client(base_url=upstream.url) as http:
        assert (await http.get("/x")).status_code == 200
    first, second = upstream.requests_for("/x")
    assert second.at - first.at >= 1.0
    assert policies.stats.rate_limit_waits == 1
    assert policies.stats.rate_limit_wait_seconds == pytest.approx(1.0)


async def test_retry_after_http_date_is_honoured(upstream: FakeUpstream, resilience: Make) -> None:
    when = time.time() + 2
    upstream.script("/x", Reply(503, headers={"Retry-After": email.utils.formatdate(when, usegmt=True)}), Reply(200))
    async with resilience().client(base_url=upstream.url) as http:
        assert (await http.get("/x")).status_code == 200
    _, second = upstream.requests_for("/x")
    assert second.wall >= int(when) - 0.01  # HTTP-dates have whole seconds


async def test_403_with_exhausted_rate_limit_waits_for_the_reset(upstream: FakeUpstream, resilience: Make) -> None:
    reset = int(time.time()) + 2
    limited = Reply(403, json={"message": "API rate limit exceeded"},
                    headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})  # fmt: skip
    upstream.script("/x", limited, Reply(200, json=[], headers={"X-RateLimit-Remaining": "4999"}))
    policies = resilience()
    async with policies.client(base_url=upstream.url) as http:
        assert (await http.get("/x")).status_code == 200
    _, second = upstream.requests_for("/x")
    assert second.wall >= reset
    assert policies.breaker.fail_counter == 0  # a rate limit is not an outage


async def test_gitlab_429_with_ratelimit_reset_epoch(upstream: FakeUpstream, resilience: Make) -> None:
    reset = time.time() + 1
    limited = Reply(429, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(reset) + 1)})
    upstream.script("/x", limited, Reply(200))
    async with resilience().client(base_url=upstream.url) as http:
        assert (await http.get("/x")).status_code == 200
    _, second = upstream.requests_for("/x")
    assert second.wall >= int(reset) + 1 - 0.01


async def test_exhausted_budget_pauses_before_the_next_request(upstream: FakeUpstream, resilience: Make) -> None:
    reset = int(time.time()) + 2
    upstream.script("/x", Reply(200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}))
    policies = resilience()
    async with policies.client(base_url=upstream.url) as http:
        await http.get("/x")
        await http.get("/x")
    _, second = upstream.requests_for("/x")
    assert second.wall >= reset
    assert policies.stats.rate_limit_waits == 1


async def test_a_wait_beyond_the_cap_fails_clearly_instead_of_sleeping(
    upstream: FakeUpstream, resilience: Make
) -> None:
    upstream.script("/x", Reply(429, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    async with resilience(max_wait_seconds=5).client(base_url=upstream.url) as http:
        with pytest.raises(RateLimitWaitTooLong, match=r"3600s, beyond max_wait_seconds=5") as caught:
            await http.get("/x")
    assert time.monotonic() - started < 2
    assert caught.value.wait_seconds == pytest.approx(3600)
    assert len(upstream.requests_for("/x")) == 1


async def test_refused_connection_is_retried_then_fails_clearly(resilience: Make) -> None:
    policies = resilience(retries=2)
    async with policies.client(base_url=refused_url()) as http:
        with pytest.raises(
            RetriesExhausted, match=r"GET http://127\.0\.0\.1:\d+/x: ConnectError after 3 attempt"
        ) as caught:
            await http.get("/x", params={"token": "s3cret"})
    assert "s3cret" not in str(caught.value)
    assert caught.value.attempts == 3
    assert policies.stats.requests == 3
    assert policies.stats.failures == 1


async def test_hanging_response_times_out_is_retried_then_fails_clearly(
    upstream: FakeUpstream, resilience: Make
) -> None:
    upstream.script("/slow", Reply(200, delay=3))
    policies = resilience(retries=1, timeout_seconds=0.3)
    started = time.monotonic()
    async with policies.client(base_url=upstream.url) as http:
        with pytest.raises(RetriesExhausted, match=r"timed out \(ReadTimeout, timeout 0.3s\) after 2 attempt"):
            await http.get("/slow")
    assert time.monotonic() - started < 2
    assert len(upstream.requests_for("/slow")) == 2


async def test_dead_upstream_opens_the_breaker_and_gets_no_more_requests(
    upstream: FakeUpstream, resilience: Make
) -> None:
    upstream.script("/x", Reply(503))
    policies = resilience(retries=10, breaker_fail_max=3, breaker_reset_seconds=30)
    async with policies.client(base_url=upstream.url) as http:
        with pytest.raises(CircuitOpen, match=r"/x: HTTP 503; source 'test-source': circuit breaker opened after 3"):
            await http.get("/x")
        assert len(upstream.requests_for("/x")) == 3
        for _ in range(3):
            with pytest.raises(CircuitOpen, match=r"breaker open after 3 consecutive failures, GET .*/x not sent"):
                await http.get("/x")
    assert len(upstream.requests_for("/x")) == 3
    state = policies.breaker_state()
    assert state["state"] == "open"
    assert 0 < state["retry_in_seconds"] <= 30
    assert policies.stats.short_circuited == 3


async def test_open_breaker_lets_a_trial_through_after_the_reset_and_closes(
    upstream: FakeUpstream, resilience: Make
) -> None:
    upstream.script("/x", Reply(503), Reply(503), Reply(200))
    policies = resilience(retries=5, breaker_fail_max=2, breaker_reset_seconds=0.3)
    async with policies.client(base_url=upstream.url) as http:
        with pytest.raises(CircuitOpen):
            await http.get("/x")
        await asyncio.sleep(0.35)
        assert (await http.get("/x")).status_code == 200
    assert policies.breaker_state()["state"] == "closed"
    assert len(upstream.requests_for("/x")) == 3


async def test_client_errors_are_returned_not_retried_and_do_not_trip_the_breaker(
    upstream: FakeUpstream, resilience: Make
) -> None:
    upstream.script("/x", Reply(404, json={"message": "nope"}))
    policies = resilience(breaker_fail_max=1)
    async with policies.client(base_url=upstream.url) as http:
        for _ in range(3):
            assert (await http.get("/x")).status_code == 404
    assert len(upstream.requests_for("/x")) == 3
    assert policies.breaker_state()["state"] == "closed"


async def test_plain_403_is_returned_as_is(upstream: FakeUpstream, resilience: Make) -> None:
    upstream.script("/x", Reply(403, json={"message": "Resource not accessible by integration"}))
    async with resilience().client(base_url=upstream.url) as http:
        response = await http.get("/x")
    assert response.status_code == 403
    assert response.json()["message"].startswith("Resource")
    assert len(upstream.requests_for("/x")) == 1


async def test_post_is_not_retried_on_5xx(upstream: FakeUpstream, resilience: Make) -> None:
    upstream.script("/x", Reply(503), Reply(200))
    async with resilience().client(base_url=upstream.url) as http:
        with pytest.raises(RetriesExhausted, match="HTTP 503 after 1 attempt"):
            await http.post("/x", json={"a": 1})
    assert len(upstream.requests_for("/x")) == 1


async def test_pacing_never_exceeds_the_configured_rate(upstream: FakeUpstream, resilience: Make) -> None:
    upstream.script("/x", Reply(200))
    policies = resilience(rate_limit_per_second=20, max_concurrency=8)
    started = time.monotonic()
    async with policies.client(base_url=upstream.url) as http:
        await asyncio.gather(*(http.get("/x") for _ in range(30)))
    elapsed = time.monotonic() - started
    assert max_requests_in_window([r.at for r in upstream.requests_for("/x")], 1.0) <= 20
    assert elapsed >= 29 / 20


async def test_concurrency_cap_limits_requests_in_flight(resilience: Make) -> None:
    with FakeUpstream(latency=0.3) as upstream:
        upstream.script("/x", Reply(200))
        async with resilience(max_concurrency=2).client(base_url=upstream.url) as http:
            await asyncio.gather(*(http.get("/x") for _ in range(6)))
        arrivals = [r.at for r in upstream.requests_for("/x")]
    assert len(arrivals) == 6
    assert max_requests_in_window(arrivals, 0.15) <= 2  # pairs 0.3 s apart: 150 ms of slack for jitter


async def test_etag_turns_unchanged_pages_into_free_304s(upstream: FakeUpstream, resilience: Make) -> None:
    from metrichub_core.resilience import CACHE_HEADER, HttpCache

    upstream.pages("/items", [{"id": n} for n in range(5)], page_size=10)
    policies = resilience()
    cache = HttpCache()
    async with policies.client(base_url=upstream.url, cache=cache) as http:
        first = await http.get("/items")
    restored = HttpCache.from_state(cache.to_state())  # persisted in the source state between runs
    async with policies.client(base_url=upstream.url, cache=restored) as http:
        second = await http.get("/items")
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second.headers[CACHE_HEADER] == "hit"
    assert upstream.requests_for("/items")[1].headers["if-none-match"] == first.headers["etag"]
    assert policies.stats.cache_hits == 1
    assert policies.stats.responses == {"200": 1, "304": 1}


async def test_cancellation_is_not_counted_by_the_breaker(resilience: Make) -> None:
    with FakeUpstream() as upstream:
        upstream.script("/x", Reply(200, delay=2))
        policies = resilience(breaker_fail_max=1)
        async with policies.client(base_url=upstream.url) as http:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await http.get("/x")
    assert policies.breaker_state()["state"] == "closed"


async def test_errors_never_carry_credentials(upstream: FakeUpstream, resilience: Make) -> None:
    upstream.script("/x", Reply(500))
    async with resilience(retries=0).client(base_url=upstream.url.replace("http://", "http://user:pw@")) as http:
        with pytest.raises(httpx.HTTPError) as caught:
            await http.get("/x", params={"private_token": "glpat-secret"}, headers={"Authorization": "Bearer t0k"})
    message = str(caught.value)
    assert "glpat-secret" not in message and "pw" not in message and "t0k" not in message


async def test_half_open_breaker_sends_one_trial_not_a_stampede(resilience: Make) -> None:
    with FakeUpstream(latency=0.1) as upstream:
        upstream.script("/x", Reply(503), Reply(503))
        policies = resilience(retries=0, breaker_fail_max=2, breaker_reset_seconds=0.6, max_concurrency=8)
        async with policies.client(base_url=upstream.url) as http:
            for _ in range(2):
                with pytest.raises(RetriesExhausted if _ == 0 else CircuitOpen):
                    await http.get("/x")
            await asyncio.sleep(0.65)
            # the upstream is still down: the first trial fails and re-opens; the others are refused unsent
            results = await asyncio.gather(*(http.get("/x") for _ in range(6)), return_exceptions=True)
    assert all(isinstance(result, CircuitOpen) for result in results)
    assert len(upstream.requests_for("/x")) == 3
