"""Fixtures: one fake GitLab server for the session, emptied before each test (see ``gitlab_fake``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from gitlab_fake import FakeGitLab, History


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        yield fake


@pytest.fixture
def gitlab(_fake_server: FakeGitLab) -> FakeGitLab:
    """A fresh fake GitLab (same server, emptied state)."""
    _fake_server.reset()
    return _fake_server


@pytest.fixture
def history_factory(gitlab: FakeGitLab) -> Callable[..., History]:
    def make(seed: int = 10) -> History:
        return History(gitlab, seed)

    return make
