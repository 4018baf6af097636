"""Configured jobs → the jobs that have builds: folders and multibranch projects expand.

A multibranch project's children are its branch jobs (``WorkflowJob``s named after the branch,
``/`` encoded as ``%2F``), kept when ``branches`` matches the decoded name, so a new branch
needs no configuration change (apache/devlake#5633). A folder (or an organisation folder)
expands to every job in it, recursively, its multibranch projects filtered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metrichub_plugin_jenkins._client import JenkinsClient
from metrichub_plugin_jenkins._config import JenkinsConfig

__all__ = ["CHILD_FIELDS", "MAX_DEPTH", "JobTarget", "expand", "is_container"]

CHILD_FIELDS = "jobs[name,_class]"
MAX_DEPTH = 4  # folders inside folders followed below a configured one


@dataclass(frozen=True)
class JobTarget:
    """A job whose builds are read: its full name, the configured entry it came from, its service."""

    full_name: str
    entry: str
    service: str


def is_container(body: dict[str, Any]) -> bool:
    """A folder, an organisation folder or a multibranch project: it has jobs, not builds."""
    cls = str(body.get("_class", ""))
    return ("jobs" in body and "allBuilds" not in body) or "Folder" in cls or "MultiBranch" in cls


async def expand(client: JenkinsClient, config: JenkinsConfig, entry: str, body: dict[str, Any]) -> list[JobTarget]:
    """The jobs with builds under the container ``entry`` whose listing is ``body``."""
    found: list[JobTarget] = []
    await _walk(client, config, entry, entry, body, 0, found)
    return found


async def _walk(
    client: JenkinsClient,
    config: JenkinsConfig,
    entry: str,
    full_name: str,
    body: dict[str, Any],
    depth: int,
    found: list[JobTarget],
) -> None:
    multibranch = "MultiBranch" in str(body.get("_class", ""))
    project = full_name.rsplit("/", 1)[-1]
    for child in body.get("jobs") or []:
        name = str(child.get("name", ""))
        if not name:
            continue
        child_name = f"{full_name}/{name}"
        if multibranch:
            if config.wants_branch(name):
                found.append(JobTarget(child_name, entry, config.service_of(entry, project)))
        elif is_container({"_class": child.get("_class", "")}):
            if depth < MAX_DEPTH:
                listing = await client.job_json(child_name, CHILD_FIELDS)
                await _walk(client, config, entry, child_name, listing, depth + 1, found)
            else:
                client.logger.warning("%s: not following folders deeper than %d levels", child_name, MAX_DEPTH)
        else:
            found.append(JobTarget(child_name, entry, config.service_of(entry, name)))
