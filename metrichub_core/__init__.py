"""MetricHub: trustworthy DORA metrics from the tools teams already use."""

from metrichub_core.dora import DoraOptions, DoraReport, DoraTrend
from metrichub_core.hookspecs import hookimpl
from metrichub_core.hub import MetricHub
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.sources import Source, SourceConfig, SourceContext
from metrichub_core.storage import Storage
from metrichub_core.sync import SyncMetricHub

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Change",
    "Deployment",
    "DoraOptions",
    "DoraReport",
    "DoraTrend",
    "Event",
    "hookimpl",
    "Incident",
    "MetricHub",
    "Source",
    "SourceConfig",
    "SourceContext",
    "Storage",
    "SyncMetricHub",
]
