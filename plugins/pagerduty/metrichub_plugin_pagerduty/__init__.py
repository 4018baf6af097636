"""MetricHub source plugin for PagerDuty: incidents of mapped services, kept current, and v3 webhooks.

Installed, it registers the ``pagerduty`` source kind through the ``metrichub`` entry point.
"""

from __future__ import annotations

from metrichub_core import Source, hookimpl
from metrichub_plugin_pagerduty._client import PagerDutyError
from metrichub_plugin_pagerduty._config import PagerDutyConfig
from metrichub_plugin_pagerduty._source import PagerDutySource

__version__ = "0.1.0"

__all__ = ["PagerDutyConfig", "PagerDutyError", "PagerDutySource", "__version__", "register_sources"]


for _exported in (PagerDutyConfig, PagerDutyError, PagerDutySource):
    _exported.__module__ = __name__  # reprs and tracebacks show the public name


@hookimpl
def register_sources() -> list[type[Source]]:
    return [PagerDutySource]
