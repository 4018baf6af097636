"""The core's storage contract, run against a real PostgreSQL server."""

from __future__ import annotations

import pytest

from metrichub_core.testing.storage_contract import PersistentStorageContract


class TestPostgresStorage(PersistentStorageContract):
    @pytest.fixture
    def storage_url(self, pg_url: str) -> str:
        return pg_url
