"""Where the repository is: a local path used in place, or a remote mirrored into ``cache_dir``."""

from __future__ import annotations

import logging
import os

from metrichub_plugin_git._config import GitConfig
from metrichub_plugin_git._runner import GitError, GitRunner, basic_auth_env, redact

__all__ = ["check_repository", "open_repository"]

# Heads and tags, force-updated and pruned: a moved or deleted tag upstream is moved or deleted here.
_MIRROR_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


def _remote_env(settings: GitConfig) -> dict[str, str]:
    if settings.token is None:
        return {}
    return basic_auth_env(settings.username, settings.token.get_secret_value())


async def check_repository(settings: GitConfig) -> None:
    """Raise ``GitError`` when git is missing, the path is no repository, or the remote does not answer."""
    await GitRunner(None, settings.git_timeout_seconds).run("--version")
    location = settings.location()
    if settings.is_remote():
        remote = GitRunner(None, settings.git_timeout_seconds, _remote_env(settings))
        try:
            await remote.run("ls-remote", "--quiet", location, "HEAD")
        except GitError as exc:
            raise GitError(redact(f"repository {location} cannot be read: {exc}")) from None
        return
    await _local(settings, location)


def _is_directory(path: str) -> bool:
    return os.path.isdir(path)


async def _local(settings: GitConfig, location: str) -> GitRunner:
    if not _is_directory(location):
        raise GitError(f"repository {location} does not exist (or is not a directory)")
    git = GitRunner(location, settings.git_timeout_seconds)
    try:
        await git.run("rev-parse", "--git-dir")
    except GitError as exc:
        raise GitError(f"repository {location} is not a git repository: {exc}") from None
    return git


def _make_parent(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)


async def open_repository(settings: GitConfig, logger: logging.Logger) -> GitRunner:
    """A runner on the repository to read; a remote is fetched into its mirror first."""
    location = settings.location()
    if not settings.is_remote():
        return await _local(settings, location)
    mirror = settings.cache_path()
    if not _is_directory(mirror):
        _make_parent(mirror)
        await GitRunner(None, settings.git_timeout_seconds).run("init", "--bare", "--quiet", mirror)
        logger.info("cloning %s into %s", redact(location), mirror)
    git = GitRunner(mirror, settings.git_timeout_seconds, _remote_env(settings))
    try:
        # The URL is given on each fetch, never stored in the mirror's config.
        await git.run("fetch", "--quiet", "--prune", "--force", "--no-tags", location, *_MIRROR_REFSPECS)
    except GitError as exc:
        raise GitError(redact(f"repository {location} cannot be fetched: {exc}")) from None
    return GitRunner(mirror, settings.git_timeout_seconds)
