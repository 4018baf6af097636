"""Duration statistics: exact values, or a mergeable log-bucket summary of them.

The headline statistic is the interpolated median, as SQL's ``PERCENTILE_CONT``:
for sorted values ``v`` and quantile ``q``, the rank is ``q * (n - 1)`` and the
result interpolates linearly between the two values around that rank.

Large windows are summarised in buckets of relative width ``GAMMA - 1`` (1 %) from one
millisecond up (all shorter durations share bucket 0), each keeping its count, sum,
minimum and maximum. A bucket holding one or two values is therefore exact, the mean is
always exact, and a quantile is off by less than a bucket's width: 1 % of it from a
millisecond up, less than a millisecond below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["BUCKET_FLOOR_SECONDS", "EMPTY", "GAMMA", "Bucket", "Summary", "bucket_of", "percentile_cont"]

GAMMA = 1.01
BUCKET_FLOOR_SECONDS = 0.001
"""Durations under a millisecond share bucket 0; from a millisecond up buckets are 1 % wide."""
_LOG_GAMMA = math.log(GAMMA)


def bucket_of(seconds: float) -> int:
    """The bucket a non-negative duration falls in: 0 under a millisecond, then log-spaced 1 % wide."""
    if seconds < BUCKET_FLOOR_SECONDS:
        return 0
    return 1 + int(math.log(seconds / BUCKET_FLOOR_SECONDS) / _LOG_GAMMA)


def percentile_cont(ordered: Sequence[float], q: float) -> float:
    """``PERCENTILE_CONT(q)`` of already sorted, non-empty values."""
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(slots=True, unsafe_hash=True)
class Bucket:
    """``count`` values within ``[low, high]`` adding up to ``total``.

    A value, never changed once made; not frozen only because a yearly report builds thousands
    and a frozen dataclass takes three times as long to build.
    """

    count: int
    total: float
    low: float
    high: float


@dataclass(frozen=True)
class Summary:
    """A distribution of durations in seconds: exact ``values`` or ``buckets``."""

    count: int
    total: float
    values: tuple[float, ...] | None = None
    buckets: tuple[Bucket, ...] | None = None

    @classmethod
    def exact(cls, values: Iterable[float]) -> Summary:
        ordered = tuple(sorted(values))
        return cls(count=len(ordered), total=math.fsum(ordered), values=ordered)

    @classmethod
    def of_buckets(cls, buckets: Iterable[Bucket]) -> Summary:
        ordered = tuple(sorted((bucket for bucket in buckets if bucket.count), key=lambda bucket: bucket.low))
        return cls(
            count=sum(bucket.count for bucket in ordered),
            total=math.fsum(bucket.total for bucket in ordered),
            buckets=ordered,
        )

    @property
    def is_exact(self) -> bool:
        return self.values is not None

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The interpolated ``q`` quantile; ``None`` when there is no value."""
        if not self.count:
            return None
        if self.values is not None:
            return percentile_cont(self.values, q)
        rank = q * (self.count - 1)
        low = math.floor(rank)
        below, above = self._at_rank(low), self._at_rank(min(low + 1, self.count - 1))
        return below + (above - below) * (rank - low)

    def _at_rank(self, rank: int) -> float:
        # Values inside a bucket are assumed evenly spread between its minimum and maximum.
        seen = 0
        for bucket in self.buckets or ():
            if rank < seen + bucket.count:
                if bucket.count == 1:
                    return bucket.low
                return bucket.low + (bucket.high - bucket.low) * (rank - seen) / (bucket.count - 1)
            seen += bucket.count
        raise IndexError(rank)


EMPTY = Summary.exact(())
