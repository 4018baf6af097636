"""The repository's deployment tags: one ``git for-each-ref`` pass, annotated tags peeled to their commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from metrichub_plugin_git._runner import GitRunner

__all__ = ["TAG_FORMAT", "Tag", "list_tags", "parse_tags"]

# for-each-ref has no -z: fields are NUL-separated (%00) and records end at a newline,
# which neither a ref name nor a date can contain.
_FIELDS = (
    "%(refname)",
    "%(objecttype)",
    "%(objectname)",
    "%(*objecttype)",
    "%(*objectname)",
    "%(taggerdate:iso-strict)",
    "%(committerdate:iso-strict)",
    "%(*committerdate:iso-strict)",
)
TAG_FORMAT = "%00".join(_FIELDS)
_PREFIX = "refs/tags/"


@dataclass(frozen=True)
class Tag:
    """A deployment tag: its name, the commit it points at, and when it was deployed.

    ``approximate`` is true when git records no creation time for the tag (a lightweight
    tag, or an annotated one without a tagger): ``at`` is then the commit's committer date.
    """

    name: str
    sha: str
    at: datetime
    approximate: bool

    def order(self) -> tuple[datetime, str]:
        return self.at, self.name


def _time(text: str) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


def parse_tags(output: bytes, wanted: Callable[[str], bool]) -> tuple[list[Tag], list[str], list[str]]:
    """Tags from ``for-each-ref --format=TAG_FORMAT``, the names that need peeling (tag of a tag),
    and those pointing at no commit (a tree or a blob)."""
    tags: list[Tag] = []
    nested: list[str] = []
    skipped: list[str] = []
    for line in output.decode("utf-8", "replace").splitlines():
        fields = line.split("\0")
        if len(fields) != len(_FIELDS) or not fields[0].startswith(_PREFIX):
            continue
        refname, kind, sha, peeled_kind, peeled_sha, tagger_date, commit_date, peeled_commit_date = fields
        name = refname[len(_PREFIX) :]
        if not wanted(name):
            continue
        if kind == "commit":
            at = _time(commit_date)
            if at is not None:
                tags.append(Tag(name, sha, at, approximate=True))
        elif kind == "tag" and peeled_kind == "commit":
            tagged = _time(tagger_date)
            at = tagged or _time(peeled_commit_date)
            if at is not None:
                tags.append(Tag(name, peeled_sha, at, approximate=tagged is None))
        elif kind == "tag" and peeled_kind == "tag":
            nested.append(name)  # a tag of a tag: peeled below
        else:
            skipped.append(name)  # a tag of a tree or a blob is not a deployment
    return tags, nested, skipped


async def list_tags(git: GitRunner, wanted: Callable[[str], bool]) -> tuple[list[Tag], list[str]]:
    """Deployment tags, and the names of matching tags that point at no commit (skipped)."""
    output = await git.run("for-each-ref", f"--format={TAG_FORMAT}", _PREFIX)
    tags, nested, skipped = parse_tags(output, wanted)
    if nested:
        peeled, missing = await _peel(git, nested, output)
        tags += peeled
        skipped += missing
    return tags, skipped


async def _peel(git: GitRunner, names: list[str], listing: bytes) -> tuple[list[Tag], list[str]]:
    """Tags of tags (rare): their commit through ``^{commit}``; the outer tag's tagger date."""
    query = "".join(f"{_PREFIX}{name}^{{commit}}\n" for name in names).encode()
    answer = (await git.run("cat-file", "--batch-check=%(objectname)", stdin=query)).decode().splitlines()
    dates = {}
    for line in listing.decode("utf-8", "replace").splitlines():
        fields = line.split("\0")
        if len(fields) == len(_FIELDS):
            dates[fields[0][len(_PREFIX) :]] = fields[5]
    resolved = {name: sha for name, sha in zip(names, answer, strict=True) if not sha.endswith(" missing")}
    missing = [name for name in names if name not in resolved]
    commit_dates: dict[str, datetime] = {}
    if any(not dates.get(name) for name in resolved):
        log = await git.run("log", "--no-walk=unsorted", "-z", "--format=%H %cI", "--stdin",
                            stdin="".join(f"{sha}\n" for sha in resolved.values()).encode())  # fmt: skip
        for record in log.decode().split("\0"):
            if record.strip():
                sha, _, when = record.strip().partition(" ")
                commit_dates[sha] = datetime.fromisoformat(when).astimezone(UTC)
    tags: list[Tag] = []
    for name, sha in resolved.items():
        tagged = _time(dates.get(name, ""))
        at = tagged or commit_dates.get(sha)
        if at is not None:
            tags.append(Tag(name, sha, at, approximate=tagged is None))
    return tags, missing
