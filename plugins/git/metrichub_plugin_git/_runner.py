"""Running ``git``: one process per command, no shell, a fixed locale, no prompts, bounded in time."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from metrichub_core.errors import SourceError

# Credentials in a URL (user info, secret-looking query parameters) are masked by the core's one helper.
from metrichub_core.redaction import redact_url as redact

__all__ = ["GitError", "GitRunner", "basic_auth_env", "redact"]

# Inherited from a hook or a wrapper, these would point git at another repository than -C.
_REPOSITORY_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
)
_STDERR_TAIL = 600  # characters of git's own message kept in an error


class GitError(SourceError):
    """A git command failed, timed out or could not be started; the message never holds credentials."""


def basic_auth_env(username: str | None, secret: str) -> dict[str, str]:
    """Git config (``http.extraHeader``) passed through the environment, so no URL or argv carries it."""
    token = base64.b64encode(f"{username or ''}:{secret}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
    }


@dataclass(frozen=True)
class GitRunner:
    """``git -C <directory>`` with ``safe.directory`` set for that directory only.

    Parameters:
        directory: the repository (a work tree or a bare repository); ``None`` for commands
            that need none (``git --version``, ``git ls-remote``).
        timeout: seconds before a command is killed.
        env: extra environment (credentials for a remote).
    """

    directory: str | None
    timeout: float
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def command(self, args: Sequence[str]) -> list[str]:
        prefix = ["git"]
        if self.directory is not None:
            real = os.path.realpath(self.directory)
            prefix += ["-c", f"safe.directory={real}"]
            if os.path.basename(real) == ".git":  # the owner check looks at the work tree
                prefix += ["-c", f"safe.directory={os.path.dirname(real)}"]
            prefix += ["-C", self.directory]
        return [*prefix, *args]

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in _REPOSITORY_ENV}
        env.update(LC_ALL="C", LANG="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never")
        env.update(self.env)
        return env

    async def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        """The command's standard output; ``GitError`` on a non-zero exit, a timeout or no ``git``."""
        what = redact(" ".join(["git", *args[:1]]))
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(args),
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.environment(),
            )
        except FileNotFoundError:
            raise GitError("the git command was not found on PATH: install git (2.31 or newer)") from None
        except PermissionError as exc:
            raise GitError(f"git could not be started: {exc.strerror}") from None
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(stdin), self.timeout)
        except TimeoutError:
            await _stop(process)
            raise GitError(f"{what} did not finish within {self.timeout:g} s (git_timeout_seconds)") from None
        except asyncio.CancelledError:  # the collection was cancelled: leave no git behind
            await _stop(process)
            raise
        if process.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
            raise GitError(redact(f"{what} failed (exit {process.returncode}): {message}"))
        return stdout


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()
