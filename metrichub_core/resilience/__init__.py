"""The resilience layer: policies the host applies to every source's HTTP.

Plugins never import this to get resilience (``ctx.http`` already has it); they
may use ``paginate``, steer the ETag cache with ``CACHE_EXTENSION`` and catch the
errors below.
"""

from metrichub_core.resilience.budget import Budget
from metrichub_core.resilience.cache import CACHE_EXTENSION, CACHE_HEADER, CacheControl, HttpCache, replayed
from metrichub_core.resilience.client import SourceResilience
from metrichub_core.resilience.errors import CircuitOpen, HTTPLayerError, RateLimitWaitTooLong, RetriesExhausted
from metrichub_core.resilience.pagination import PaginationLoop, json_items, paginate, paginate_pages
from metrichub_core.resilience.policy import Policy
from metrichub_core.resilience.stats import CollectorStats
from metrichub_core.resilience.transport import ResilientTransport

__all__ = [
    "CACHE_EXTENSION",
    "CACHE_HEADER",
    "Budget",
    "CacheControl",
    "CircuitOpen",
    "CollectorStats",
    "HTTPLayerError",
    "HttpCache",
    "PaginationLoop",
    "Policy",
    "RateLimitWaitTooLong",
    "ResilientTransport",
    "RetriesExhausted",
    "SourceResilience",
    "json_items",
    "paginate",
    "paginate_pages",
    "replayed",
]
