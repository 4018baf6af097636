"""MetricHub: trustworthy DORA metrics from the tools teams already use."""

from metrichub_core.hookspecs import hookimpl
from metrichub_core.hub import MetricHub
from metrichub_core.models import Change, Deployment, Event, Incident
from metrichub_core.sources import Source, SourceConfig, SourceContext
from metrichub_core.storage import Storage

__version__ = "0.1.0"

__all__ = [
    "Change",
    "Deployment",
    "Event",
    "Incident",
    "MetricHub",
    "Source",
    "SourceConfig",
    "SourceContext",
    "Storage",
    "__version__",
    "hookimpl",
]
