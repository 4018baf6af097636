"""Reading what upstreams say about waiting: ``Retry-After`` and rate-limit headers.

GitHub sends ``X-RateLimit-Remaining``/``X-RateLimit-Reset`` (epoch seconds) and
signals exhaustion with 403 or 429; GitLab sends ``RateLimit-Remaining``/``RateLimit-Reset``
(epoch) with 429; the IETF draft's ``RateLimit-Reset`` is delta-seconds; ``Retry-After``
is delta-seconds or an HTTP-date. Jenkins sends none of these.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

import httpx

__all__ = [
    "RATE_LIMIT_BODY_MARKERS",
    "SECONDARY_LIMIT_WAIT_SECONDS",
    "is_rate_limited",
    "rate_limit_remaining",
    "rate_limit_reset_in",
    "retry_after_seconds",
    "server_wait_seconds",
]

_REMAINING = ("x-ratelimit-remaining", "ratelimit-remaining")
_RESET = ("x-ratelimit-reset", "ratelimit-reset")
# Below this a reset value is delta-seconds, above it a Unix timestamp (2001-09-09).
_EPOCH_THRESHOLD = 1_000_000_000
RATE_LIMIT_BODY_MARKERS = (b"rate limit", b"ratelimit", b"too many requests")
SECONDARY_LIMIT_WAIT_SECONDS = 60.0
"""GitHub: a secondary limit without headers means waiting at least a minute."""


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """``Retry-After`` as seconds from ``now`` (delta-seconds or HTTP-date); ``None`` if absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - now)


def rate_limit_remaining(headers: Mapping[str, str]) -> int | None:
    for name in _REMAINING:
        value = headers.get(name)
        if value is not None:
            try:
                return int(float(value.strip()))
            except ValueError:
                return None
    return None


def rate_limit_reset_in(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the rate-limit window resets (epoch or delta form); ``None`` if absent."""
    for name in _RESET:
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = float(value.strip())
        except ValueError:
            return None
        if number >= _EPOCH_THRESHOLD:
            return max(0.0, number - now)
        return max(0.0, number)
    return None


def is_rate_limited(response: httpx.Response, body: bytes = b"") -> bool:
    """429, or a 403 that the headers or body mark as a rate limit (GitHub's primary and secondary limits)."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    if "retry-after" in response.headers or rate_limit_remaining(response.headers) == 0:
        return True
    lowered = body[:4096].lower()
    return any(marker in lowered for marker in RATE_LIMIT_BODY_MARKERS)


def server_wait_seconds(response: httpx.Response, now: float) -> float | None:
    """How long a rate-limited response tells us to wait, or ``None`` to fall back to backoff.

    ``Retry-After`` wins; then the reset header, on a 429 or when nothing remains (PagerDuty
    sends ``ratelimit-reset`` on its 429s without ``ratelimit-remaining``); then GitHub's
    one-minute rule for a header-less 403.
    """
    hint = retry_after_seconds(response.headers, now)
    if hint is not None:
        return hint
    if response.status_code == 429 or rate_limit_remaining(response.headers) == 0:
        reset = rate_limit_reset_in(response.headers, now)
        if reset is not None:
            return reset
    if response.status_code == 403:
        return SECONDARY_LIMIT_WAIT_SECONDS
    return None
