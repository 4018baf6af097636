"""The schema-version check both SQL backends run before applying their migrations."""

from __future__ import annotations

from metrichub_core.errors import MigrationError

__all__ = ["check_version"]


def check_version(found: int, known: int, *, database: str, package: str) -> None:
    """Raise ``MigrationError`` when ``database`` is at a schema version this code does not know.

    ``found`` is the database's version, ``known`` the number of migrations this code
    has; ``package`` is the distribution that must be upgraded to read it.
    """
    if found > known:
        raise MigrationError(
            f"{database} was written by a newer MetricHub: its schema is at version {found}, and this "
            f"{package} knows versions up to {known}; install a {package} whose schema reaches version {found}"
        )
