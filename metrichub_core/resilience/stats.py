"""Collector counters as plain data, for health routes and the Prometheus exporter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["CollectorStats"]


@dataclass
class CollectorStats:
    """Monotonic counters of one source's HTTP traffic since the process started.

    ``requests`` counts requests sent upstream (each retry is one more);
    ``retries`` the attempts after a first; ``rate_limit_waits`` the pauses the
    upstream asked for (429, rate-limit 403, exhausted budget) and
    ``rate_limit_wait_seconds`` their total; ``cache_hits`` the 304s served from
    the ETag cache; ``short_circuited`` the requests refused by an open breaker;
    ``failures`` the requests that failed after every policy gave up.
    """

    requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_seconds: float = 0.0
    cache_hits: int = 0
    short_circuited: int = 0
    failures: int = 0
    responses: dict[str, int] = field(default_factory=dict)

    def count_response(self, status_code: int) -> None:
        key = str(status_code)
        self.responses[key] = self.responses.get(key, 0) + 1

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["responses"] = dict(self.responses)
        return data
