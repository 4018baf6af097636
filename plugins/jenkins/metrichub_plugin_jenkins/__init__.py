"""MetricHub source plugin for Jenkins: deployments and shipped commits from every build of listed jobs.

Installed, it registers the ``jenkins`` source kind through the ``metrichub`` entry point.
"""

from __future__ import annotations

from metrichub_core import Source, hookimpl
from metrichub_plugin_jenkins._client import JenkinsError
from metrichub_plugin_jenkins._config import JenkinsConfig
from metrichub_plugin_jenkins._source import JenkinsSource

__version__ = "0.1.0"

__all__ = ["JenkinsConfig", "JenkinsError", "JenkinsSource", "__version__", "register_sources"]


for _exported in (JenkinsConfig, JenkinsError, JenkinsSource):
    _exported.__module__ = __name__  # reprs and tracebacks show the public name


@hookimpl
def register_sources() -> list[type[Source]]:
    return [JenkinsSource]
