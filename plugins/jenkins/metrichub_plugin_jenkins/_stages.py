"""``deploy_stage``: a pipeline build's deployment outcome from its stages (``/wfapi/describe``).

The Pipeline REST API (pipeline-stage-view) lists each stage with a ``status``:
``SUCCESS``, ``FAILED``, ``UNSTABLE``, ``ABORTED``, ``IN_PROGRESS``, ``PAUSED_PENDING_INPUT``,
``NOT_EXECUTED`` or ``SKIPPED`` (a declarative ``when`` that was false). Only a matching stage
that ran makes the build a deployment (DevLake counted a skipped one, apache/devlake#7097).
"""

from __future__ import annotations

import re
from typing import Any

from metrichub_plugin_jenkins._builds import Status

__all__ = ["stage_outcome"]

# Worst first: two matching stages (two regions, say) give the worse outcome.
_ORDER = ("FAILED", "ABORTED", "UNSTABLE", "SUCCESS")


def stage_outcome(describe: Any, pattern: str, unstable: Status) -> Status | None:
    """The status of the stages matching ``pattern``; ``None`` when none of them ran."""
    stages = describe.get("stages") if isinstance(describe, dict) else None
    statuses = {
        str(stage.get("status"))
        for stage in stages or []
        if isinstance(stage, dict) and re.search(pattern, str(stage.get("name", "")))
    }
    outcomes: dict[str, Status] = {
        "FAILED": "failure",
        "ABORTED": "cancelled",
        "UNSTABLE": unstable,
        "SUCCESS": "success",
    }
    for status in _ORDER:
        if status in statuses:
            return outcomes[status]
    return None  # skipped, not executed, or no such stage
