"""A real PostgreSQL server for the whole session, and a fresh database per test.

The server comes from ``metrichub_plugin_postgres.testing.TemporaryServer`` (as the
``postgres`` user under root). When it cannot start, the tests that need it skip
with the reason, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from metrichub_plugin_postgres.testing import ServerUnavailable, TemporaryServer

pytest.register_assert_rewrite("metrichub_core.testing")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TemporaryServer]:
    server = TemporaryServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so PostgreSQL tests must run, but the server did not start: {exc}")
        pytest.skip(f"PostgreSQL server unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_database(pg_server: TemporaryServer) -> Iterator[str]:
    """The name of a fresh, empty database (ICU collation), dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name)
    yield name
    if not pg_server.running:  # a test stopped it; bring it back for the others
        pg_server.start()
    pg_server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: TemporaryServer, pg_database: str) -> str:
    return pg_server.url(pg_database)
