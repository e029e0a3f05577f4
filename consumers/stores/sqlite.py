"""The embedded read-model store: one SQLite file in WAL mode.

One writer at a time (``BEGIN IMMEDIATE``, a lock among the threads of one process and a lock file
``{file}-writer.lock`` among processes; a second writer waits up to :data:`BUSY_TIMEOUT_S`) and any
number of readers in other threads or processes, whose snapshots never block the writer and are
never blocked by it. Each thread gets its own
connection. ``synchronous=NORMAL``: a power cut may lose the last transactions, but never half of one,
and the positions are in the same file as the rows, so the consumer simply applies the lost events
again.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from consumers.readmodel import Key, Row, Table
from consumers.stores import sql
from consumers.stores.base import StoreError, shadow_adapter
from consumers.stores.common import SqlStore, internal_tables

BUSY_TIMEOUT_S = 30.0
# SQLite builds before 3.32 allow 999 parameters per statement; stay under that everywhere.
MAX_PARAMETERS = 999
FETCH_SIZE = 2000
LOCK_POLL_S = 0.001
CHECKPOINT_S = 0.5


class SqliteTransaction:
    """A transaction on one SQLite connection (``?`` placeholders, as SQLite takes them)."""

    dialect = sql.SQLITE.name

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, query: str, params: Sequence[Any] | None = ()) -> sqlite3.Cursor:
        """Run one statement."""
        return self._connection.execute(query, () if params is None else params)

    def executemany(self, query: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement per parameter tuple."""
        self._connection.executemany(query, params)


class SqliteStore(SqlStore):
    """A read-model store in one SQLite file."""

    dialect = sql.SQLITE

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        # The threads of one process take turns here: SQLite's busy handler waits by sleeping in steps
        # of up to 100 ms, which made a batch wait far longer than the writer before it took.
        self._writer = threading.Lock()
        self._lookups: dict[str, tuple[Table, str, sql.RowCodec]] = {}
        self._closing = threading.Event()
        self._checkpointer: threading.Thread | None = None
        super().__init__(f"sqlite:///{path}")
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._lock_file = os.open(f"{self.path}-writer.lock", flags, 0o600)
        except OSError as exc:
            raise StoreError(f"read-model store {self.where}: {exc.strerror}", self.where) from exc
        with self.transaction() as tx:
            for statement in internal_tables("INTEGER", " WITHOUT ROWID"):
                tx.execute(statement, None)

    @property
    def identity(self) -> str:
        """The file's resolved path as a URL."""
        return f"sqlite:///{self.path}"

    # -- connections and transactions -------------------------------------------------------------

    def _open_connection(self) -> sqlite3.Connection:
        with self._errors():
            # check_same_thread=False only so that close() may close every thread's connection;
            # each connection is still used by the one thread that opened it.
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._use_wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints (copying the WAL into the file, with fsync) run in a thread of their own:
            # done by the committing writer they made one commit in a few hundred take 100 ms.
            connection.execute("PRAGMA wal_autocheckpoint=0")
        return connection

    @staticmethod
    def _use_wal(connection: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting while another process does the same.

        The first connections to a new file race to switch it, and the loser's ``journal_mode`` gets
        "database is locked" at once, without SQLite's busy wait (two ``govbus consume`` workers
        opening a new read-model file together failed so about once in a hundred starts).
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(LOCK_POLL_S)

    def close(self) -> None:
        """Stop the checkpoints, close every connection and the writers' lock file."""
        self._closing.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=BUSY_TIMEOUT_S)
        super().close()
        if self._lock_file >= 0:
            os.close(self._lock_file)
            self._lock_file = -1

    def _start_checkpoints(self) -> None:
        """Start the thread that checkpoints the WAL while this store writes (once)."""
        with self._connections_lock:
            if self._checkpointer is not None or self._closing.is_set():
                return
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name=f"sqlite-checkpoint:{self.path.name}", daemon=True
            )
            self._checkpointer.start()

    def _checkpoints(self) -> None:
        """Every :data:`CHECKPOINT_S`, copy the committed WAL into the file without blocking anyone.

        A PASSIVE checkpoint never waits for readers or writers: it copies what no reader still needs,
        and the writers start the WAL over from its beginning once a checkpoint has copied all of it.
        """
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            while not self._closing.wait(CHECKPOINT_S):
                with suppress(sqlite3.Error):
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            with suppress(sqlite3.Error):
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()

    def _close_connection(self, connection: Any) -> None:
        with suppress(sqlite3.Error):
            connection.close()

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""
        connection: sqlite3.Connection = self._connection()
        if connection.in_transaction:
            raise StoreError("a transaction or snapshot is already open on this thread", self.where)
        if not self._writer.acquire(timeout=BUSY_TIMEOUT_S):
            raise StoreError(
                f"read-model store {self.where}: another thread kept writing for {BUSY_TIMEOUT_S:g}s",
                self.where,
                transient=True,
            )
        self._start_checkpoints()
        try:
            with self._file_lock():
                with self._errors():
                    connection.execute("BEGIN IMMEDIATE")
                with self._errors(), self._rollback_on_error(connection):
                    yield SqliteTransaction(connection)
                    connection.execute("COMMIT")
        finally:
            self._writer.release()

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """The writers of other processes take turns here (``{file}-writer.lock``), as threads do above.

        SQLite's own wait for a busy database sleeps in steps of up to 100 ms; a writer polling this
        lock every millisecond takes the database within a millisecond of the last writer's commit.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"read-model store {self.where}: another process kept writing for "
                        f"{BUSY_TIMEOUT_S:g}s",
                        self.where,
                        transient=True,
                    ) from None
                time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    @contextmanager
    def snapshot(self) -> Iterator[SqliteTransaction]:
        """A read transaction that starts at once and sees one state of the file until the block ends."""
        connection: sqlite3.Connection = self._connection()
        if connection.in_transaction:
            raise StoreError("a transaction or snapshot is already open on this thread", self.where)
        with self._errors():
            connection.execute("PRAGMA query_only = ON")
            try:
                connection.execute("BEGIN DEFERRED")
                # A deferred transaction takes its snapshot at its first read: read now.
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
                yield SqliteTransaction(connection)
            finally:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                connection.execute("PRAGMA query_only = OFF")

    @contextmanager
    def _rollback_on_error(self, connection: sqlite3.Connection) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if connection.in_transaction:
                with suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            raise StoreError(f"read-model store {self.where}: {exc}", self.where, transient=busy) from exc

    # -- the backend half of SqlStore --------------------------------------------------------------

    def _lock_schema(self, tx: Any) -> None:
        # BEGIN IMMEDIATE already keeps every other writer out.
        del tx

    def _stored_columns(self, tx: Any, name: str) -> set[str]:
        return {row[1] for row in tx.execute(f"PRAGMA table_info({sql.quote(name)})").fetchall()}

    def lookup(self, table: Table, key: Key) -> Row | None:
        """The stored row with primary key ``key`` (None if absent): one SELECT, which SQLite runs in a
        read transaction of its own, so it sees one state of the file without an explicit snapshot."""
        prepared = self._lookups.get(table.name)
        if prepared is None or prepared[0] is not table:
            where = " AND ".join(f"{sql.quote(c)} = ?" for c in table.key)
            query = f"{sql.select_columns(table, table.name)} WHERE {where}"
            prepared = self._lookups[table.name] = (table, query, self.codec(table))
        _, query, codec = prepared
        connection: sqlite3.Connection = self._connection()
        with self._errors():
            stored = connection.execute(query, codec.encode_key(key)).fetchone()
        return None if stored is None else codec.decode(stored)

    @property
    def quick_lookups(self) -> bool:
        """A lookup by primary key in a local file takes tens of microseconds: fine on an event loop."""
        return True

    def _load(self, tx: Any, table: Table, name: str, keys: Sequence[Key]) -> list[Row]:
        codec = self.codec(table)
        width = len(table.key)
        query = sql.select_columns(table, name)
        if width == 1:
            where = f" WHERE {sql.quote(table.key[0])} IN "
        else:
            where = f" WHERE ({', '.join(sql.quote(c) for c in table.key)}) IN (VALUES "
        found: list[Row] = []
        for part in sql.chunks(keys, MAX_PARAMETERS // width):
            params = [value for key in part for value in codec.encode_key(key)]
            if width == 1:
                listed = f"({', '.join('?' for _ in part)})"
            else:
                one = f"({', '.join('?' for _ in range(width))})"
                listed = ", ".join(one for _ in part) + ")"
            found.extend(codec.decode(row) for row in tx.execute(query + where + listed, params).fetchall())
        return found

    def _upsert(self, tx: Any, table: Table, name: str, rows: list[tuple[Any, ...]]) -> None:
        tx.executemany(sql.upsert(table, name), rows)

    def _delete(self, tx: Any, table: Table, name: str, keys: list[tuple[Any, ...]]) -> None:
        condition = " AND ".join(f"{sql.quote(c)} = ?" for c in table.key)
        tx.executemany(f"DELETE FROM {sql.quote(name)} WHERE {condition}", keys)

    # -- event ids, rebuilds, dumps ----------------------------------------------------------------

    def claim_events(self, tx: Any, adapter: str, event_ids: Iterable[str]) -> set[str]:
        """Record the ids as applied by ``adapter`` in ``tx``; returns the ids it had not applied before.

        SQLite has one writer at a time, so no other transaction can claim an id in between. Usually
        every id is new (the runner looked them up in its snapshot): one insert does it, and only when
        the primary key refuses one are the known ids looked up, the insert undone to its savepoint.
        """
        wanted = list(dict.fromkeys(event_ids))
        insert = f"INSERT INTO {sql.EVENTS_TABLE} (adapter, event_id) VALUES (?, ?)"
        tx.execute("SAVEPOINT claim_events", None)
        try:
            tx.executemany(insert, [(adapter, event_id) for event_id in wanted])
        except sqlite3.IntegrityError:
            tx.execute("ROLLBACK TO claim_events", None)
        else:
            tx.execute("RELEASE claim_events", None)
            return set(wanted)
        tx.execute("RELEASE claim_events", None)
        seen = self.applied_events(tx, adapter, wanted)
        new = [event_id for event_id in wanted if event_id not in seen]
        tx.executemany(insert, [(adapter, event_id) for event_id in new])
        return set(new)

    def shadow(self, tables: Iterable[Table], adapter: str) -> None:
        """Create empty ``{table}__rebuild`` copies (dropping leftovers) and forget the rebuild's tracking."""
        with self.transaction() as tx:
            for table in tables:
                sql.check_table(table)
                name = sql.physical(table, True)
                tx.execute(f"DROP TABLE IF EXISTS {sql.quote(name)}", None)
                for statement in sql.create_table(self.dialect, table, name):
                    tx.execute(statement, None)
            self._forget_tracking(tx, shadow_adapter(adapter))

    def swap(self, tables: Iterable[Table], adapter: str) -> None:
        """Replace the live tables, positions and event ids by the rebuild's, in one transaction.

        Readers keep their snapshot (the old tables) until they end it; later ones see the new tables.
        """
        tables = list(tables)
        with self.transaction() as tx:
            for table in tables:
                if not self._stored_columns(tx, sql.physical(table, True)):
                    raise StoreError(f"no rebuild of {table.name} to swap in ({self.where})", self.where)
            self._move_tracking(tx, shadow_adapter(adapter), adapter)
            for table in tables:
                shadow = sql.physical(table, True)
                tx.execute(f"DROP TABLE IF EXISTS {sql.quote(table.name)}", None)
                tx.execute(f"ALTER TABLE {sql.quote(shadow)} RENAME TO {sql.quote(table.name)}", None)
                # SQLite cannot rename an index: build each under its live name.
                for columns in table.indexes:
                    tx.execute(f"DROP INDEX IF EXISTS {sql.quote(sql.index_name(shadow, columns))}", None)
                    tx.execute(sql.create_index(table, table.name, columns), None)

    def dump(self, table: Table, *, shadow: bool = False) -> Iterator[Row]:
        """Every row of ``table`` sorted by key, from one snapshot on a read-only connection of its own."""
        codec = self.codec(table)
        query = sql.select_columns(table, sql.physical(table, shadow)) + sql.order_by_key(self.dialect, table)
        with self._errors():
            connection = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            with self._errors():
                cursor = connection.execute(query)
                while batch := cursor.fetchmany(FETCH_SIZE):
                    yield from (codec.decode(row) for row in batch)
        finally:
            connection.close()
