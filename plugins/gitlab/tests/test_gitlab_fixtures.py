"""The plugin's fixture copies must stay byte-equal to the shared, sourced originals."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "gitlab"


def copies() -> list[Path]:
    return sorted(HERE.rglob("*.json"))


@pytest.mark.parametrize("copy", copies(), ids=lambda path: str(path.relative_to(HERE)))
def test_copy_equals_the_shared_original(copy: Path) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED}")
    original = SHARED / copy.relative_to(HERE)
    assert original.is_file(), f"{copy.relative_to(HERE)} has no original at {original}"
    assert copy.read_bytes() == original.read_bytes()


def test_there_are_fixtures_to_check() -> None:
    assert len(copies()) == 11
