"""The resilience layer: policies the host applies to every source's HTTP."""

from metrichub_core.resilience.policy import Policy

__all__ = ["Policy"]
