"""The storage contract, run against the built-in backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrichub_core.testing.storage_contract import PersistentStorageContract, StorageContract


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage_url(self) -> str:
        return "memory://"


class TestSQLiteStorage(PersistentStorageContract):
    @pytest.fixture
    def storage_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/metrichub.db"
