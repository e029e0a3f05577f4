"""Read-model stores. A projection writes its view rows and the tracking row in ONE transaction.

The tracking table holds, per ``(adapter, topic, partition)``, the offset of the last record
applied. A runner resumes from it, and a record at or below it is "already applied" and skipped,
so a crash between the database commit and anything else never applies an event twice.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from bus.errors import ConfigurationError

TRACKING_DDL = """
CREATE TABLE IF NOT EXISTS tracking (
    adapter TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    PRIMARY KEY (adapter, topic, partition)
)
"""


class Transaction(Protocol):
    """The slice of a DB-API connection that projections use (``?`` placeholders)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement."""
        ...


class Store(Protocol):
    """A database the projections write to and the gateway reads from."""

    def transaction(self) -> Any:
        """A context manager yielding a :class:`Transaction`; commits on success, rolls back on error."""
        ...

    def positions(self, adapter: str) -> dict[tuple[str, int], int]:
        """The last applied offset per (topic, partition) of ``adapter``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SqliteStore:
    """SQLite in WAL mode: one writer (the consumer) and many readers (the gateway) across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self.transaction() as tx:
            tx.execute(TRACKING_DDL)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=True
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.row_factory = sqlite3.Row
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read-only view that stays consistent for the block and blocks no writer."""
        connection = self._connection()
        connection.execute("BEGIN DEFERRED")
        try:
            yield connection
        finally:
            connection.execute("COMMIT")

    def positions(self, adapter: str) -> dict[tuple[str, int], int]:
        """The last applied offset per (topic, partition) of ``adapter``."""
        rows = self._connection().execute(
            'SELECT topic, partition, "offset" FROM tracking WHERE adapter = ?', (adapter,)
        )
        return {(row["topic"], row["partition"]): row["offset"] for row in rows}

    def close(self) -> None:
        """Close this thread's connection."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def record_position(tx: Transaction, adapter: str, topic: str, partition: int, offset: int) -> None:
    """Upsert the tracking row inside the caller's transaction."""
    tx.execute(
        'INSERT INTO tracking (adapter, topic, partition, "offset") VALUES (?, ?, ?, ?) '
        'ON CONFLICT (adapter, topic, partition) DO UPDATE SET "offset" = excluded."offset"',
        (adapter, topic, partition, offset),
    )


def open_store(url: str, *, create_folder: bool = False) -> SqliteStore:
    """Open the store a ``GOVBUS_READMODEL_URL`` names (``sqlite:///relative`` or ``sqlite:////absolute``).

    Only SQLite is supported for now. The database file is created when missing, but its folder must
    exist: a mistyped path should fail, not start a new, empty read model somewhere else. The embedded
    default (under ``GOVBUS_HOME``) passes ``create_folder=True``.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ConfigurationError(
            f"unsupported read-model URL {url!r}; only sqlite:///PATH is supported for now"
        )
    path = Path(url[len(prefix) :])
    if create_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise ConfigurationError(
            f"the folder {path.parent} of GOVBUS_READMODEL_URL does not exist; create it, or fix the URL"
        )
    return SqliteStore(path)
