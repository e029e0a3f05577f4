"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a temp cluster, a free port.

The server binaries come from ``/usr/lib/postgresql/<version>/bin`` (the newest version there; Debian's
``postgresql`` package puts them there and ``make test`` installs it), else from ``pg_ctl`` on PATH.
PostgreSQL refuses to run as root, so when the tests run as root (CI) ``initdb`` and ``pg_ctl`` run as
the ``postgres`` user through ``runuser`` and the cluster folder belongs to that user. The cluster
listens on 127.0.0.1 only, with its Unix socket in its own folder, and trusts every local connection;
it trades durability for speed (``fsync=off``): it lives for one test session (or one benchmark run) and
is deleted afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_USER = "postgres"
START_TIMEOUT_S = 60
HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are missing or the cluster would not start."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``; raises with install advice when there is none."""
    candidates = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
        key=lambda path: _version_key(path.parent.name),
    )
    if candidates:
        return candidates[-1]
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").exists():
        return Path(on_path).parent
    raise PostgresUnavailableError(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/pg_ctl, no pg_ctl on PATH); "
        "install Debian's 'postgresql' package (`make test` does: deploy/install-tools.sh --postgres)"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temp folder; :meth:`start`, use :attr:`url`, then :meth:`stop`."""

    def __init__(self) -> None:
        self.bin_dir = find_bin_dir()
        self.port = _free_port()
        as_root = os.geteuid() == 0
        # As root the folder must be reachable by the postgres user: /tmp is, a TMPDIR under /root is not.
        self.root = Path(tempfile.mkdtemp(prefix="govbus-pg-", dir="/tmp" if as_root else None))  # noqa: S108
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        if as_root:
            try:
                server_user = pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise PostgresUnavailableError(
                    f"running as root, but there is no {SERVER_USER!r} user to run PostgreSQL as "
                    "(Debian's postgresql package creates it)"
                ) from exc
            os.chown(self.root, server_user.pw_uid, server_user.pw_gid)
            self._as_user = ["runuser", "-u", SERVER_USER, "--"]

    @property
    def url(self) -> str:
        """A URL for the ``postgres`` database as the superuser ``govbus``."""
        return f"postgresql://govbus@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """initdb and start the cluster; raises PostgresUnavailableError with the server log on failure."""
        self._run(
            self.bin_dir / "initdb",
            "-D", str(self.data), "-U", "govbus", "-E", "UTF8", "--locale=C", "--auth=trust", "--no-sync",
        )  # fmt: skip
        (self.data / "pg_hba.conf").write_text(HBA, encoding="utf-8")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(
            self.bin_dir / "pg_ctl",
            "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(START_TIMEOUT_S), "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the cluster (fast shutdown) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self._as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
                capture_output=True,
                timeout=START_TIMEOUT_S,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, *command: str | Path) -> None:
        argv = [*self._as_user, *(str(part) for part in command)]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
            raise PostgresUnavailableError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{log[-3000:]}"
            )


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url``; return a URL for it."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server_url.rsplit("/", 1)[0] + f"/{name}"
