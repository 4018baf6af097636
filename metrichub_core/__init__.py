"""MetricHub: trustworthy DORA metrics from the tools teams already use."""

from metrichub_core.dora import DoraOptions, DoraReport, DoraTrend
from metrichub_core.errors import (
    ConfigError,
    DeadlineExceeded,
    DoraQueryError,
    MetricHubError,
    MigrationError,
    PluginError,
    ResolveConflict,
    ResolveError,
    SourceError,
    SourceFault,
    StorageError,
    UnknownIncident,
    UnknownProfile,
    UnknownSource,
    UnknownStorageScheme,
    UpstreamError,
    WebhookNotSupported,
    WebhookRejected,
)
from metrichub_core.hookspecs import hookimpl
from metrichub_core.hub import MetricHub
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.resilience.errors import CircuitOpen, HTTPLayerError, RateLimitWaitTooLong, RetriesExhausted
from metrichub_core.resilience.pagination import PaginationLoop
from metrichub_core.sources import Source, SourceConfig, SourceContext
from metrichub_core.storage import Storage
from metrichub_core.sync import SyncMetricHub

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Change",
    "CircuitOpen",
    "ConfigError",
    "DeadlineExceeded",
    "Deployment",
    "DoraOptions",
    "DoraQueryError",
    "DoraReport",
    "DoraTrend",
    "Event",
    "hookimpl",
    "HTTPLayerError",
    "Incident",
    "MetricHub",
    "MetricHubError",
    "MigrationError",
    "PaginationLoop",
    "PluginError",
    "RateLimitWaitTooLong",
    "ResolveConflict",
    "ResolveError",
    "RetriesExhausted",
    "Source",
    "SourceConfig",
    "SourceContext",
    "SourceError",
    "SourceFault",
    "Storage",
    "StorageError",
    "SyncMetricHub",
    "UnknownIncident",
    "UnknownProfile",
    "UnknownSource",
    "UnknownStorageScheme",
    "UpstreamError",
    "WebhookNotSupported",
    "WebhookRejected",
]
