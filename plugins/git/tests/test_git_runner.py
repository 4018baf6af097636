"""How git is started: argv (no shell), environment, credentials, timeouts, redaction (a stand-in ``git`` on PATH)."""

from __future__ import annotations

import base64
import json
import stat
import sys
from pathlib import Path

import pytest
from metrichub_plugin_git import GitError
from metrichub_plugin_git._runner import GitRunner, basic_auth_env, redact

RECORDER = """#!{python}
import json, os, sys
print(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ), "stdin": sys.stdin.read()}}))
"""
SLEEPER = """#!{python}
import time
time.sleep(30)
"""


def fake_git(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(body.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))


async def test_argv_environment_and_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_git(tmp_path, RECORDER, monkeypatch)
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")  # as inside a hook: must not redirect -C
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    repository = tmp_path / "repo"
    repository.mkdir()
    runner = GitRunner(str(repository), 5, basic_auth_env("alice", "s3cret"))
    seen = json.loads(await runner.run("log", "-z", "--stdin", stdin=b"abc\n"))
    real = str(repository.resolve())
    assert seen["argv"] == ["-c", f"safe.directory={real}", "-C", str(repository), "log", "-z", "--stdin"]
    assert seen["stdin"] == "abc\n"
    env = seen["env"]
    assert (env["LC_ALL"], env["LANG"], env["GIT_TERMINAL_PROMPT"]) == ("C", "C", "0")
    assert "GIT_DIR" not in env
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert not any("s3cret" in arg for arg in seen["argv"])


async def test_a_work_trees_git_dir_is_trusted_through_its_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_git(tmp_path, RECORDER, monkeypatch)
    (tmp_path / "app" / ".git").mkdir(parents=True)
    seen = json.loads(await GitRunner(str(tmp_path / "app" / ".git"), 5).run("status"))
    real = str((tmp_path / "app").resolve())
    assert f"safe.directory={real}/.git" in seen["argv"] and f"safe.directory={real}" in seen["argv"]


async def test_a_hanging_git_is_killed_after_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_git(tmp_path, SLEEPER, monkeypatch)
    with pytest.raises(GitError, match=r"git fetch did not finish within 0.2 s \(git_timeout_seconds\)"):
        await GitRunner(None, 0.2).run("fetch", "https://bob:pw@example.invalid/x.git")


async def test_failures_are_redacted(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        await GitRunner(None, 30).run("ls-remote", "--quiet", f"file://user:pw-1234@localhost{tmp_path}/missing.git")
    assert "pw-1234" not in str(caught.value) and "exit 128" in str(caught.value)


def test_redact() -> None:
    assert redact("fatal: unable to access 'https://u:p@h.example/x.git/'") == (
        "fatal: unable to access 'https://***@h.example/x.git/'"
    )
    assert redact("ssh://git@h.example/x and http://TOKEN@h/") == "ssh://***@h.example/x and http://***@h/"
    assert redact("/srv/git/app.git") == "/srv/git/app.git"
