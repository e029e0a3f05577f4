"""The outbox tables in SQLite and PostgreSQL: the little SQL that differs, behind one small interface.

Two sides use it. Agency code hands :class:`~producers.outbox.Outbox` its own open connection
(``sqlite3`` or psycopg 3), and :func:`writer_for` picks the dialect from the connection's type.
The relay opens the database itself from a URL with :func:`open_database` (``sqlite:///relative``,
``sqlite:////absolute`` or ``postgresql://...``) and gets an :class:`OutboxDatabase`.

One relay at a time: a second relay on the same outbox waits as a hot standby until the first one's
lock goes away (also when it is killed), so rows are never shipped by two relays at once and never
out of order. PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``), released when the
relay stops, or by the server when a killed relay's connection ends. ``FOR UPDATE SKIP LOCKED`` is
deliberately not used: it would let a second relay ship later rows of an aggregate while the first
still holds earlier ones. SQLite: an exclusive ``flock`` on ``<database>.relay-lock`` next to the
database file, released by the kernel when the process ends.

The relay creates the tables only when they are missing, so once they exist its database user needs
no more than SELECT and UPDATE on ``govbus_outbox`` and SELECT on ``govbus_outbox_schema``. Its
connection commits every statement on its own (autocommit), so it never holds a transaction open
while it waits for Kafka. SQLite databases are opened ``mode=rw``: a mistyped path is an error, not a
new empty database, and the relay leaves the journal mode to the agency.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bus.errors import ConfigurationError, GovbusError

DbConnection = sqlite3.Connection | psycopg.Connection[Any]
SQLITE_PREFIX = "sqlite:///"
SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
# Advisory lock keys (two-int form, first half "gov?" in ASCII), apart from the one-bigint key space.
PG_LOCK_AGGREGATE = 1735358049  # "gova": per topic/key, held by add() until the writer commits
PG_LOCK_RELAY = 1735358066  # "govr": the active relay, for its session
PG_LOCK_SCHEMA = 1735358067  # "govs": serialises ensure_schema's CREATE ... IF NOT EXISTS

TABLES = ("govbus_outbox", "govbus_outbox_schema")
SQLITE_DDL = (
    """CREATE TABLE IF NOT EXISTS govbus_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        event_type TEXT NOT NULL,
        schema_fingerprint TEXT NOT NULL,
        payload TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        extensions TEXT NOT NULL DEFAULT '{}',
        sent_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS govbus_outbox_unsent ON govbus_outbox (seq) WHERE sent_at IS NULL",
    """CREATE TABLE IF NOT EXISTS govbus_outbox_schema (
        fingerprint TEXT PRIMARY KEY,
        event_type TEXT NOT NULL,
        schema_text TEXT NOT NULL
    )""",
)
POSTGRES_DDL = (
    f"SELECT pg_advisory_xact_lock({PG_LOCK_SCHEMA}, 0)",
    SQLITE_DDL[0]
    .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    .replace("occurred_at TEXT", "occurred_at TIMESTAMPTZ")
    .replace("sent_at TEXT", "sent_at TIMESTAMPTZ"),
    *SQLITE_DDL[1:],
)
INSERT_SCHEMA = (
    "INSERT INTO govbus_outbox_schema (fingerprint, event_type, schema_text) VALUES (?, ?, ?) "
    "ON CONFLICT (fingerprint) DO NOTHING"
)
INSERT_ROW = (
    "INSERT INTO govbus_outbox (event_id, event_type, schema_fingerprint, payload, occurred_at, extensions) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# One round trip on PostgreSQL. The key lock is taken before the row (and so its identity value) is
# produced, which is what makes seq order equal commit order per aggregate (see producers.outbox).
# NOT EXISTS skips the schema insert once the schema is committed: ON CONFLICT alone would make every
# writer wait while another transaction's first row of that schema is uncommitted.
# 1735358049 is PG_LOCK_AGGREGATE, written out so that the statement stays a constant.
POSTGRES_ADD = """
WITH key_lock AS (SELECT pg_advisory_xact_lock(1735358049, hashtext(%s))),
     writer_schema AS (
         INSERT INTO govbus_outbox_schema (fingerprint, event_type, schema_text)
         SELECT %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM govbus_outbox_schema WHERE fingerprint = %s)
         ON CONFLICT (fingerprint) DO NOTHING)
INSERT INTO govbus_outbox (event_id, event_type, schema_fingerprint, payload, occurred_at, extensions)
SELECT %s, %s, %s, %s, %s, %s FROM key_lock
"""
SELECT_PENDING = (
    "SELECT seq, event_id, event_type, schema_fingerprint, payload, occurred_at, extensions "
    "FROM govbus_outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?"
)
SELECT_SCHEMA = "SELECT schema_text FROM govbus_outbox_schema WHERE fingerprint = ?"
SELECT_COUNTS = (
    "SELECT COALESCE(SUM(CASE WHEN sent_at IS NULL THEN 1 ELSE 0 END), 0), COUNT(sent_at) FROM govbus_outbox"
)
# Only the listed rows: a range could include a row that committed after the batch was read.
MARK_SENT = "UPDATE govbus_outbox SET sent_at = ? WHERE seq = ? AND sent_at IS NULL"

SchemaRow = tuple[str, str, str]
OutboxInsert = tuple[str, str, str, str, datetime, str]


class OutboxDatabaseError(GovbusError):
    """The outbox database could not be opened, or a statement on it failed."""


@dataclass(frozen=True)
class OutboxRow:
    """One stored event as the relay reads it."""

    seq: int
    event_id: str
    event_type: str
    schema_fingerprint: str
    payload: str
    occurred_at: datetime
    extensions: dict[str, str]


@dataclass(frozen=True)
class OutboxCounts:
    """How many rows wait for Kafka and how many it has acknowledged."""

    pending: int
    sent: int


class OutboxWriter(Protocol):
    """The dialect-specific writes on an agency's own connection."""

    integrity_errors: tuple[type[Exception], ...]

    def ensure_schema(self, schemas: Sequence[SchemaRow] = ()) -> None:
        """Create the tables when missing and store ``schemas`` (fingerprint, event type, text)."""
        ...

    def insert(self, *, lock_key: str, schema: SchemaRow, row: OutboxInsert) -> None:
        """Store the writer schema (once) and the row in the open transaction."""
        ...


class OutboxDatabase(Protocol):
    """The relay's view of an outbox database."""

    @property
    def where(self) -> str:
        """The database's URL without credentials, for messages."""
        ...

    def try_lock(self) -> bool:
        """Become the active relay if no other relay is; True when this one is."""
        ...

    def pending(self, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` unsent rows, lowest ``seq`` first."""
        ...

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Record that Kafka acknowledged the rows with these ``seq`` values."""
        ...

    def writer_schema(self, fingerprint: str) -> str | None:
        """The schema text stored under ``fingerprint``, if any."""
        ...

    def counts(self) -> OutboxCounts:
        """Pending and sent row counts."""
        ...

    def close(self) -> None:
        """Close the connection and give up the relay lock."""
        ...


class _SqliteWriter:
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def ensure_schema(self, schemas: Sequence[SchemaRow] = ()) -> None:
        own = not self._connection.in_transaction
        if own:
            self._connection.execute("BEGIN IMMEDIATE")
        for statement in SQLITE_DDL:
            self._connection.execute(statement)
        self._connection.executemany(INSERT_SCHEMA, schemas)
        if own:
            self._connection.execute("COMMIT")

    def insert(self, *, lock_key: str, schema: SchemaRow, row: OutboxInsert) -> None:
        # SQLite has one writer at a time, so the per-aggregate lock is not needed (lock_key unused).
        del lock_key
        self._connection.execute(INSERT_SCHEMA, schema)
        self._connection.execute(INSERT_ROW, (*row[:4], _sqlite_time(row[4]), row[5]))


class _PostgresWriter:
    integrity_errors: tuple[type[Exception], ...] = (psycopg.errors.UniqueViolation,)

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def ensure_schema(self, schemas: Sequence[SchemaRow] = ()) -> None:
        with self._connection.transaction():
            for statement in POSTGRES_DDL:
                self._connection.execute(statement)
            if schemas:
                self._connection.cursor().executemany(INSERT_SCHEMA.replace("?", "%s"), schemas)

    def insert(self, *, lock_key: str, schema: SchemaRow, row: OutboxInsert) -> None:
        self._connection.execute(POSTGRES_ADD, (lock_key, *schema, schema[0], *row))


def writer_for(connection: DbConnection) -> OutboxWriter:
    """The writer for an agency's ``sqlite3`` or psycopg 3 connection."""
    if isinstance(connection, sqlite3.Connection):
        return _SqliteWriter(connection)
    if isinstance(connection, psycopg.Connection):
        return _PostgresWriter(connection)
    raise ConfigurationError(
        f"the outbox supports sqlite3 and psycopg 3 connections, not {type(connection).__name__}"
    )


def open_database(url: str) -> OutboxDatabase:
    """Open the outbox database a URL names and create its tables when missing."""
    if url.startswith(SQLITE_PREFIX):
        return _SqliteDatabase(Path(url[len(SQLITE_PREFIX) :]))
    if url.startswith(("postgresql://", "postgres://")):
        return _PostgresDatabase(url)
    raise ConfigurationError(
        f"unsupported outbox database URL {redact(url)!r}; expected sqlite:///PATH or postgresql://..."
    )


def redact(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _SqliteDatabase:
    def __init__(self, path: Path) -> None:
        self.where = f"{SQLITE_PREFIX}{path}"
        self._path = path
        self._lock_fd: int | None = None
        if not path.is_file():
            raise OutboxDatabaseError(f"outbox database {self.where} does not exist")
        with self._errors():
            self._connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=SQLITE_BUSY_TIMEOUT_S,
                isolation_level=None,
            )
            found = self._connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)", TABLES
            ).fetchone()
            if found[0] < len(TABLES):
                _SqliteWriter(self._connection).ensure_schema()

    def try_lock(self) -> bool:
        if self._lock_fd is None:
            self._lock_fd = os.open(f"{self._path}.relay-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def pending(self, limit: int) -> list[OutboxRow]:
        with self._errors():
            rows = self._connection.execute(SELECT_PENDING, (limit,)).fetchall()
        return [_row(*row) for row in rows]

    def mark_sent(self, seqs: Sequence[int]) -> None:
        now = _sqlite_time(datetime.now(UTC))
        with self._errors():
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                self._connection.executemany(MARK_SENT, [(now, seq) for seq in seqs])
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def writer_schema(self, fingerprint: str) -> str | None:
        with self._errors():
            found = self._connection.execute(SELECT_SCHEMA, (fingerprint,)).fetchone()
        return None if found is None else str(found[0])

    def counts(self) -> OutboxCounts:
        with self._errors():
            pending, sent = self._connection.execute(SELECT_COUNTS).fetchone()
        return OutboxCounts(int(pending), int(sent))

    def close(self) -> None:
        self._connection.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise OutboxDatabaseError(f"outbox database {self.where}: {exc}") from exc


class _PostgresDatabase:
    def __init__(self, url: str) -> None:
        self.where = redact(url)
        self._locked = False
        with self._errors():
            self._connection = psycopg.connect(url, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_S)
            found = self._connection.execute(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL", TABLES
            ).fetchone()
            if not (found and found[0]):
                _PostgresWriter(self._connection).ensure_schema()

    def try_lock(self) -> bool:
        with self._errors():
            found = self._connection.execute(f"SELECT pg_try_advisory_lock({PG_LOCK_RELAY}, 0)").fetchone()
        self._locked = found is not None and bool(found[0])
        return self._locked

    def pending(self, limit: int) -> list[OutboxRow]:
        with self._errors():
            rows = self._connection.execute(SELECT_PENDING.replace("?", "%s"), (limit,)).fetchall()
        return [_row(*row) for row in rows]

    def mark_sent(self, seqs: Sequence[int]) -> None:
        with self._errors():
            self._connection.execute(
                "UPDATE govbus_outbox SET sent_at = %s WHERE seq = ANY(%s) AND sent_at IS NULL",
                (datetime.now(UTC), list(seqs)),
            )

    def writer_schema(self, fingerprint: str) -> str | None:
        with self._errors():
            found = self._connection.execute(SELECT_SCHEMA.replace("?", "%s"), (fingerprint,)).fetchone()
        return None if found is None else str(found[0])

    def counts(self) -> OutboxCounts:
        with self._errors():
            found = self._connection.execute(SELECT_COUNTS).fetchone()
        pending, sent = found if found is not None else (0, 0)
        return OutboxCounts(int(pending), int(sent))

    def close(self) -> None:
        # The server drops a session's locks only once its backend has exited, a little after the
        # client hung up; unlocking first hands the outbox over to a standby at once.
        if self._locked and not self._connection.closed:
            with suppress(psycopg.Error):
                self._connection.execute(f"SELECT pg_advisory_unlock({PG_LOCK_RELAY}, 0)")
        self._locked = False
        self._connection.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise OutboxDatabaseError(f"outbox database {self.where}: {exc}") from exc


def _row(
    seq: int,
    event_id: str,
    event_type: str,
    fingerprint: str,
    payload: str,
    occurred_at: str | datetime,
    extensions: str,
) -> OutboxRow:
    moment = occurred_at if isinstance(occurred_at, datetime) else datetime.fromisoformat(occurred_at)
    return OutboxRow(seq, event_id, event_type, fingerprint, payload, moment, json.loads(extensions))


def _sqlite_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
