"""Per job: which listed commits each environment has shipped, and how far the builds were read.

A build's change set lists the commits since the previous build of the job, whatever that
build's result or environment. So the ledger keeps, in build-number order, every commit the
job's builds listed, and per environment the position up to which a successful build for it
has shipped them: a success for ``E`` ships everything listed since ``E``'s previous success.
An environment seen for the first time starts at the job's first build, but at most
``FIRST_SHIP`` commits back (so a production job promoting what staging builds listed ships
them with its first success). The list is trimmed to what some environment has not shipped
yet plus the last ``FIRST_SHIP`` commits, and never holds more than ``MAX_PENDING``.

``done`` is the highest build number up to which every build is finished and folded in; the
state is saved as of ``done``, so builds after one that was still running are folded again
(in number order) on the next run, and a re-run gives what a full sync would.
"""

from __future__ import annotations

import copy
from typing import Any

from metrichub_plugin_jenkins._builds import Commit

__all__ = ["FIRST_SHIP", "MAX_PENDING", "JobLedger"]

MAX_PENDING = 10_000  # commits held per job, at most
FIRST_SHIP = (
    1_024  # commits listed before it that an environment's first success ships, at most (Jenkins' cap per build)
)


class JobLedger:
    """The cursor of one job (JSON-compatible through ``load``/``dump``)."""

    def __init__(
        self,
        done: int | None = None,
        last_seen: int | None = None,
        base: int = 0,
        commits: list[Commit] | None = None,
        shipped: dict[str, int] | None = None,
        stages: dict[str, str | None] | None = None,
    ) -> None:
        self.done = done
        self.last_seen = last_seen  # newest build number read
        self.base = base  # absolute position of commits[0]
        self.commits: list[Commit] = commits or []
        self.shipped: dict[str, int] = shipped or {}  # environment → absolute position shipped up to
        self.stages: dict[str, str | None] = stages or {}  # deploy-stage outcomes of finished builds > done

    @classmethod
    def load(cls, raw: Any) -> JobLedger:
        raw = raw if isinstance(raw, dict) else {}
        return cls(
            raw.get("done"),
            raw.get("last_seen"),
            int(raw.get("base", 0)),
            [(str(sha), int(ms)) for sha, ms in raw.get("commits", [])],
            {str(env): int(position) for env, position in raw.get("shipped", {}).items()},
            dict(raw.get("stages", {})),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "last_seen": self.last_seen,
            "base": self.base,
            "commits": [list(commit) for commit in self.commits],
            "shipped": self.shipped,
            "stages": self.stages,
        }

    def copy(self) -> JobLedger:
        return copy.deepcopy(self)

    def fold(self, environment: str, listed: list[Commit], success: bool) -> list[Commit]:
        """Add one build's listed commits; a success returns what it ships (each commit once)."""
        end = self.base + len(self.commits)
        start = self.shipped.setdefault(environment, max(self.base, end - FIRST_SHIP))
        self.commits.extend(listed)
        shipped: list[Commit] = []
        if success:
            seen: set[str] = set()
            for commit in self.commits[start - self.base :]:
                if commit[0] not in seen:
                    seen.add(commit[0])
                    shipped.append(commit)
            self.shipped[environment] = self.base + len(self.commits)
        self._trim()
        return shipped

    def _trim(self) -> None:
        end = self.base + len(self.commits)
        floor = max(min([*self.shipped.values(), end - FIRST_SHIP]), end - MAX_PENDING)
        if floor > self.base:
            del self.commits[: floor - self.base]
            self.base = floor
            for environment, position in self.shipped.items():
                self.shipped[environment] = max(position, floor)
