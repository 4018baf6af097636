"""A throwaway PostgreSQL server for tests, benchmarks and demos.

``TemporaryServer`` runs ``initdb`` and ``pg_ctl`` from the machine's PostgreSQL
binaries in a temporary directory, listening on 127.0.0.1 and a free port, with its
Unix socket inside that directory. PostgreSQL refuses to run as root, so under root
the server runs as the ``postgres`` system user (the temporary directory is handed to
it); any other user runs the binaries as itself. Host connections need the password
that ``url()`` carries (SCRAM), as a production server would.

    with TemporaryServer() as server:
        url = server.create_database("scratch")
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

__all__ = ["ServerUnavailable", "TemporaryServer", "find_bindir"]

_SERVER_USER = "postgres"
_SUPERUSER = "metrichub"
_FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class ServerUnavailable(Exception):
    """No PostgreSQL server could be started here; the message says why."""


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: ``$METRICHUB_PG_BINDIR``, ``PATH``, else the newest
    ``/usr/lib/postgresql/<version>/bin`` or ``/usr/local/pgsql/bin``."""
    candidates: list[Path] = []
    if configured := os.environ.get("METRICHUB_PG_BINDIR"):
        candidates.append(Path(configured))
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).parent)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda path: [int(part) for part in re.findall(r"\d+", path)], reverse=True)
    candidates += [Path(path) for path in versioned]
    candidates.append(Path("/usr/local/pgsql/bin"))
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


class TemporaryServer:
    """A PostgreSQL server living in a temporary directory until ``stop()``.

    Parameters:
        durable: keep PostgreSQL's crash-safe defaults (``fsync``, synchronous commit);
            off by default, which makes tests much faster.
        bindir: the PostgreSQL binaries; found by ``find_bindir()`` when omitted.
    """

    def __init__(self, *, durable: bool = False, bindir: Path | None = None) -> None:
        self.durable = durable
        self.bindir = bindir or find_bindir()
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.directory: Path | None = None
        self._user: pwd.struct_passwd | None = None
        self.running = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> TemporaryServer:
        """Create the cluster on first call, then start the server; raise ``ServerUnavailable``."""
        if self.running:
            return self
        if self.directory is None:
            self._create_cluster()
        assert self.directory is not None
        options = [
            f"-p {self.port}",
            f"-k {self.directory}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=200",
            *([] if self.durable else [f"-c {key}={value}" for key, value in _FAST_SETTINGS.items()]),
        ]
        log = self.directory / "server.log"
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.directory / "data"), "-l", str(log),
            "-o", " ".join(options),
        )  # fmt: skip
        self.running = True
        atexit.register(self._stop_at_exit)
        return self

    def stop(self, *, keep: bool = False, mode: str = "fast") -> None:
        """Stop the server; unless ``keep``, delete its directory (``start()`` then makes a new one)."""
        if self.running and self.directory is not None:
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.directory / "data"))
            self.running = False
        atexit.unregister(self._stop_at_exit)
        if not keep and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def restart(self) -> None:
        """Stop (keeping the data) and start again on the same port: every connection dies."""
        self.stop(keep=True)
        self.start()

    def __enter__(self) -> TemporaryServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- using it ----------------------------------------------------------------------

    def url(self, database: str = "postgres", **parameters: str) -> str:
        """A ``postgresql://`` URL for ``database`` with the superuser's password."""
        query = "&".join(f"{key}={value}" for key, value in parameters.items())
        return f"postgresql://{_SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        """A synchronous autocommit connection, for administration in tests."""
        return psycopg.connect(self.url(database), autocommit=True)

    def create_database(self, name: str, *, icu_locale: str | None = "en-US") -> str:
        """Create ``name`` (with an ICU collation when available, so that code relying on the
        ``C`` collation by accident fails) and return its URL."""
        with self.connect() as conn:
            try:
                conn.execute(
                    f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8 '
                    f"LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'"
                    if icu_locale
                    else f'CREATE DATABASE "{name}"'
                )
            except psycopg.errors.FeatureNotSupported:  # built without ICU
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- internals ---------------------------------------------------------------------

    def _create_cluster(self) -> None:
        if self.bindir is None:
            raise ServerUnavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl) found: install postgresql "
                "(Debian: apt-get install postgresql) or set METRICHUB_PG_BINDIR"
            )
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam(_SERVER_USER)
            except KeyError:
                raise ServerUnavailable(
                    f"running as root and there is no {_SERVER_USER!r} user to run PostgreSQL as"
                ) from None
        directory = Path(tempfile.mkdtemp(prefix="metrichub-pg-"))
        password_file = directory / "password"
        password_file.write_text(self.password + "\n")
        if self._user is not None:
            for path in (directory, password_file):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self.directory = directory
        try:
            self._run(
                "initdb", "-D", str(directory / "data"), "-U", _SUPERUSER, f"--pwfile={password_file}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync",
            )  # fmt: skip
        except ServerUnavailable:
            shutil.rmtree(directory, ignore_errors=True)
            self.directory = None
            raise
        password_file.unlink()
        self.port = _free_port()

    def _run(self, program: str, *arguments: str) -> None:
        assert self.bindir is not None
        command = [str(self.bindir / program), *arguments]
        user: dict[str, Any] = {}
        if self._user is not None:
            user = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                cwd=self.directory or "/",
                stdin=subprocess.DEVNULL,
                timeout=120,
                **user,
            )
        except subprocess.CalledProcessError as exc:
            log = ""
            if self.directory is not None and (self.directory / "server.log").exists():
                log = (self.directory / "server.log").read_text(errors="replace")[-2000:]
            raise ServerUnavailable(
                f"{program} failed (exit {exc.returncode}): {(exc.stderr or exc.stdout).strip()}\n{log}".strip()
            ) from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerUnavailable(f"{program} could not run: {exc}") from None

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(ServerUnavailable):
            self.stop(mode="immediate")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
