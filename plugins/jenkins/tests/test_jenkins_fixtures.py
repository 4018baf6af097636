"""The plugin's fixture copies must stay byte-equal to the shared, sourced originals."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "jenkins" / "rest"


def copies() -> list[Path]:
    return sorted(HERE.glob("*.json"))  # local/ holds what the shared set lacks (see fixtures/README.md)


@pytest.mark.parametrize("copy", copies(), ids=lambda path: path.name)
def test_copy_equals_the_shared_original(copy: Path) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED}")
    original = SHARED / copy.name
    assert original.is_file(), f"{copy.name} has no original at {original}"
    assert copy.read_bytes() == original.read_bytes()


def test_every_shared_fixture_is_copied() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED}")
    assert sorted(path.name for path in SHARED.glob("*.json")) == [path.name for path in copies()]
