"""Reading server hints: Retry-After, rate-limit headers, rate-limit 403s (pure functions)."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from metrichub_core.resilience.budget import Budget
from metrichub_core.resilience.hints import (
    SECONDARY_LIMIT_WAIT_SECONDS,
    is_rate_limited,
    rate_limit_remaining,
    rate_limit_reset_in,
    retry_after_seconds,
    server_wait_seconds,
)

NOW = 1_800_000_000.0


def response(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, content=body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_seconds_and_http_date(value: str, expected: float | None) -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": value}), NOW) == expected


def test_retry_after_absent() -> None:
    assert retry_after_seconds(httpx.Headers(), NOW) is None


@pytest.mark.parametrize(
    ("headers", "remaining", "reset_in"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 42)}, 0, 42.0),  # GitHub: epoch
        ({"RateLimit-Remaining": "12", "RateLimit-Reset": str(int(NOW) + 5)}, 12, 5.0),  # GitLab: epoch
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "17"}, 0, 17.0),  # IETF draft: delta-seconds
        ({"X-RateLimit-Remaining": "many"}, None, None),
        ({}, None, None),
    ],
)
def test_rate_limit_headers(headers: dict[str, str], remaining: int | None, reset_in: float | None) -> None:
    assert rate_limit_remaining(httpx.Headers(headers)) == remaining
    assert rate_limit_reset_in(httpx.Headers(headers), NOW) == reset_in


@pytest.mark.parametrize(
    ("status", "headers", "body", "limited"),
    [
        (429, {}, b"", True),
        (403, {"X-RateLimit-Remaining": "0"}, b"", True),
        (403, {"Retry-After": "60"}, b"", True),
        (403, {}, b'{"message": "You have exceeded a secondary rate limit"}', True),
        (403, {"X-RateLimit-Remaining": "4000"}, b'{"message": "Resource not accessible"}', False),
        (404, {"X-RateLimit-Remaining": "0"}, b"", False),
        (503, {"Retry-After": "1"}, b"", False),
    ],
)
def test_is_rate_limited(status: int, headers: dict[str, str], body: bytes, limited: bool) -> None:
    assert is_rate_limited(response(status, headers), body) is limited


def test_server_wait_prefers_retry_after_then_reset_then_github_minute() -> None:
    reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 9)}
    assert server_wait_seconds(response(429, {"Retry-After": "3", **reset}), NOW) == 3.0
    assert server_wait_seconds(response(403, reset), NOW) == 9.0
    assert server_wait_seconds(response(403, {}), NOW) == SECONDARY_LIMIT_WAIT_SECONDS
    assert server_wait_seconds(response(429, {}), NOW) is None  # no hint: exponential backoff
    # PagerDuty: a 429 with only ``ratelimit-reset`` (delta seconds) waits the reset.
    assert server_wait_seconds(response(429, {"ratelimit-reset": "2"}), NOW) == 2.0
    # A 403 whose headers still show budget left is not a reset to wait for.
    assert server_wait_seconds(
        response(403, {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": str(NOW + 9)}), NOW
    ) == (SECONDARY_LIMIT_WAIT_SECONDS)


def test_budget_pauses_only_when_nothing_remains_and_reset_is_ahead() -> None:
    clock = [NOW]
    budget = Budget(clock=lambda: clock[0])
    budget.update(response(200, {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(int(NOW) + 10)}))
    assert budget.wait_seconds() == 0
    budget.update(response(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 10)}))
    assert budget.wait_seconds() == 10
    clock[0] += 10.5
    assert budget.wait_seconds() == 0
    assert budget.as_dict() == {"remaining": None, "reset_at": None}
    budget.update(response(200, {}))  # a response without headers changes nothing
    assert budget.wait_seconds() == 0
