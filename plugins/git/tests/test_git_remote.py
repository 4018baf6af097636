"""A remote repository over real HTTP (git's dumb protocol, served by the core's ``FakeUpstream``), and ``check()``."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from git_repos import GitRepo, hours, publish, serve_dumb_http
from metrichub_plugin_git import GitConfig, GitError, GitSource

from metrichub_core import Deployment, MetricHub, SourceContext
from metrichub_core.config import Settings
from metrichub_core.storage.base import EventQuery
from metrichub_core.testing import FakeUpstream, refused_url

SECRET = "s3cr3t-Pa55word"


def source(config: dict[str, Any], http: httpx.AsyncClient, state: dict[str, Any] | None = None) -> GitSource:
    logger = logging.getLogger("metrichub.source.remote")
    return GitSource(
        "remote",
        GitConfig.model_validate(config),
        SourceContext(http=http, logger=logger, state={} if state is None else state),
    )


async def test_remote_is_mirrored_into_cache_dir_and_fetched_again(
    repo: GitRepo, upstream: FakeUpstream, tmp_path: Path
) -> None:
    repo.commit("c1", hours(0))
    repo.tag("v1.0", hours(1))
    c2 = repo.commit("c2", hours(2))
    repo.tag("v1.1", hours(3))
    bare = tmp_path / "served.git"
    path = serve_dumb_http(upstream, repo.path, bare)
    cache = tmp_path / "cache"
    url = f"http://alice:{SECRET}@{upstream.url.removeprefix('http://')}{path}"
    config = {"kind": "git", "repository": url, "cache_dir": str(cache)}
    state: dict[str, Any] = {}
    async with httpx.AsyncClient() as http:
        await source(config, http).check()
        first = [event async for event in source(config, http, state).collect(None)]
        assert sorted(event.id for event in first if isinstance(event, Deployment)) == ["v1.0", "v1.1"]
        [mirror] = list(cache.iterdir())
        assert mirror.name.startswith("acme-") and mirror.name.endswith(".git")
        assert SECRET not in (mirror / "config").read_text()  # the URL is not stored in the mirror

        # Upstream gains a tag: the next collection fetches it and reports only it.
        c3 = repo.commit("c3", hours(4))
        repo.tag("v1.2", hours(5))
        repo.git("push", "--quiet", "--tags", str(bare), "main")
        publish(upstream, bare, "acme.git")
        second = [event async for event in source(config, http, state).collect(hours(100))]
    deployments = [event for event in second if isinstance(event, Deployment)]
    assert [(event.id, event.change_ids) for event in deployments] == [("v1.2", [c3])]
    assert c2 != c3
    # Every request carried the credentials as a Basic header, none in the URL.
    expected = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert upstream.requests and all(request.headers.get("authorization") == expected for request in upstream.requests)


def test_credentials_in_the_url_are_never_shown() -> None:
    config = GitConfig.model_validate({"kind": "git", "repository": f"https://alice:{SECRET}@git.example.com/a/b.git"})
    assert config.repository == "https://git.example.com/a/b.git"
    assert config.username == "alice" and config.token is not None
    shown = repr(config) + str(config) + config.model_dump_json()
    assert SECRET not in shown
    token_only = GitConfig.model_validate({"kind": "git", "repository": f"https://{SECRET}@git.example.com/b.git"})
    assert token_only.token is not None and token_only.token.get_secret_value() == SECRET
    assert SECRET not in token_only.model_dump_json()


async def test_unreachable_remote_fails_check_and_collection_without_leaking_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = refused_url().replace("http://", f"http://alice:{SECRET}@") + "/acme.git"
    table = {"kind": "git", "repository": url, "cache_dir": str(tmp_path / "cache"), "git_timeout_seconds": 30}
    async with httpx.AsyncClient() as http:
        with pytest.raises(GitError) as caught:
            await source(table, http).check()
    assert "cannot be read" in str(caught.value) and SECRET not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    with caplog.at_level(logging.DEBUG):
        async with MetricHub("memory://", settings=Settings(sources={"remote": table})) as hub:
            [result] = await hub.collect()
            described = str(hub.sources["remote"].describe())
    assert not result.ok and "cannot be fetched" in (result.error or "")
    assert SECRET not in (result.error or "")
    assert SECRET not in caplog.text and SECRET not in described


async def test_check_names_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(GitError, match="does not exist"):
            await source({"kind": "git", "repository": str(tmp_path / "nowhere")}, http).check()
        (tmp_path / "plain").mkdir()
        with pytest.raises(GitError, match="is not a git repository"):
            await source({"kind": "git", "repository": str(tmp_path / "plain")}, http).check()
        monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
        with pytest.raises(GitError, match="git command was not found"):
            await source({"kind": "git", "repository": str(tmp_path)}, http).check()


async def test_bare_repository_and_work_tree_git_dir(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit("c1", hours(0))
    repo.tag("v1.0", hours(1))
    c2 = repo.commit("c2", hours(2))
    repo.tag("v1.1", hours(3))
    bare = tmp_path / "app.git"
    repo.git("clone", "--quiet", "--bare", str(repo.path), str(bare))
    for location, service in ((bare, "app"), (repo.path / ".git", "app")):
        async with MetricHub(
            "memory://", settings=Settings(sources={"s": {"kind": "git", "repository": str(location)}})
        ) as hub:
            [result] = await hub.collect()
            assert result.ok, result.error
            page = await hub.storage.list_events(EventQuery(kind="deployment", limit=10))
        by_id = {event.id: event for event in page.items if isinstance(event, Deployment)}
        assert by_id["v1.1"].change_ids == [c2] and by_id["v1.1"].service == service
