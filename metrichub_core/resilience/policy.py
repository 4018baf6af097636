"""The per-source resilience policy, as configured in ``[sources.<id>.policy]``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Policy"]


class Policy(BaseModel):
    """How the host protects one source's HTTP traffic; defaults suit public APIs.

    The first five keys are the ones DESIGN.md documents; the others tune the same
    mechanisms and rarely need changing outside tests.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    retries: int = Field(4, ge=0, le=20, description="Attempts after the first, with exponential backoff and jitter.")
    timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one request.")
    breaker_fail_max: int = Field(5, ge=1, description="Consecutive failures that open the circuit.")
    breaker_reset_seconds: float = Field(60.0, gt=0, description="How long an open circuit stays open.")
    rate_limit_per_second: float = Field(10.0, gt=0, description="Client-side pacing of requests.")
    max_concurrency: int = Field(4, ge=1, le=100, description="Requests of this source in flight at once.")
    backoff_initial_seconds: float = Field(1.0, gt=0, description="First backoff; it doubles on each retry.")
    backoff_max_seconds: float = Field(60.0, gt=0, description="Longest backoff between two attempts.")
    max_wait_seconds: float = Field(
        900.0, ge=0, description="Longest server-requested wait (Retry-After, rate-limit reset) before failing."
    )
