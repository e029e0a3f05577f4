"""What both SQL stores do the same way: migrations, row sources, bulk writes, positions.

A backend subclasses :class:`SqlStore` and provides its connections and transactions, how it loads
rows by key, upserts and deletes in bulk, claims event ids, and swaps rebuilt tables in.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from consumers.readmodel import Key, Row, RowSource, Table
from consumers.stores import sql
from consumers.stores.base import Change, Positions, StoreError, Transaction


class SqlStore(ABC):
    """The shared half of a SQL read-model store (see :class:`consumers.stores.base.Store`)."""

    dialect: sql.Dialect

    def __init__(self, where: str) -> None:
        self.where = where
        """The database's URL without credentials, for messages."""
        self._codecs: dict[tuple[str, tuple[tuple[str, str], ...]], sql.RowCodec] = {}
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    # -- what a backend provides ------------------------------------------------------------------

    @property
    @abstractmethod
    def identity(self) -> str:
        """A stable name of the database without credentials."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Transaction]:
        """A consistent read-only view."""

    @abstractmethod
    def claim_events(self, tx: Transaction, adapter: str, event_ids: Iterable[str]) -> set[str]:
        """Record event ids as applied; returns the new ones."""

    @abstractmethod
    def shadow(self, tables: Iterable[Table], adapter: str) -> None:
        """Create empty rebuild copies of ``tables``."""

    @abstractmethod
    def swap(self, tables: Iterable[Table], adapter: str) -> None:
        """Put the rebuild copies in place of the live tables."""

    @abstractmethod
    def dump(self, table: Table, *, shadow: bool = False) -> Iterator[Row]:
        """Every row sorted by key."""

    @abstractmethod
    def _open_connection(self) -> Any:
        """A new connection for the calling thread."""

    def _usable(self, connection: Any) -> bool:
        """Whether ``connection`` can still run statements."""
        del connection
        return True

    @abstractmethod
    def _close_connection(self, connection: Any) -> None:
        """Close one connection, ignoring errors."""

    @abstractmethod
    def _stored_columns(self, tx: Transaction, name: str) -> set[str]:
        """The column names of stored table ``name`` (empty when it does not exist)."""

    @abstractmethod
    def _load(self, tx: Transaction, table: Table, name: str, keys: Sequence[Key]) -> list[Row]:
        """The stored rows of ``name`` with these keys."""

    @abstractmethod
    def _upsert(self, tx: Transaction, table: Table, name: str, rows: list[tuple[Any, ...]]) -> None:
        """Insert or replace encoded rows (column order) in ``name``."""

    @abstractmethod
    def _delete(self, tx: Transaction, table: Table, name: str, keys: list[tuple[Any, ...]]) -> None:
        """Delete the rows of ``name`` with these encoded keys."""

    @abstractmethod
    def _lock_schema(self, tx: Transaction) -> None:
        """Keep concurrent migrations of the same database apart until ``tx`` ends."""

    # -- connections ------------------------------------------------------------------------------

    def _connection(self) -> Any:
        """This thread's connection, opened on first use."""
        if self._closed:
            raise StoreError(f"read-model store {self.where} is closed", self.where)
        connection = getattr(self._local, "connection", None)
        if connection is not None and not self._usable(connection):
            # A connection the server dropped stays broken: forget it and open a new one.
            self._close_connection(connection)
            with self._connections_lock:
                self._connections.remove(connection)
            connection = None
        if connection is None:
            connection = self._open_connection()
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        """Close every connection the store opened, on every thread."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            self._close_connection(connection)

    # -- tables -----------------------------------------------------------------------------------

    def codec(self, table: Table) -> sql.RowCodec:
        """The row codec of ``table`` (cached per spec)."""
        spec = (table.name, tuple(table.all_columns.items()))
        codec = self._codecs.get(spec)
        if codec is None:
            codec = self._codecs[spec] = sql.RowCodec(self.dialect, table)
        return codec

    def migrate(self, tables: Iterable[Table]) -> None:
        """Create missing tables and indexes; a stored table with other columns is an error."""
        with self.transaction() as tx:
            self._lock_schema(tx)
            for table in tables:
                sql.check_table(table)
                stored = self._stored_columns(tx, table.name)
                wanted = set(table.all_columns)
                if stored and stored != wanted:
                    raise StoreError(
                        f"read-model table {table.name} in {self.where} has columns {sorted(stored)}, "
                        f"but its read model declares {sorted(wanted)}: rebuild the read model",
                        self.where,
                    )
                for statement in sql.create_table(self.dialect, table, table.name):
                    tx.execute(statement, None)

    # -- rows -------------------------------------------------------------------------------------

    def rows(self, tx: Transaction, *, shadow: bool = False) -> RowSource:
        """A row source reading through ``tx``, from the rebuild's copies when ``shadow``."""
        return _StoredRows(self, tx, shadow)

    def select(self, tx: Transaction, table: Table, column: str, value: Any, shadow: bool) -> list[Row]:
        """The stored rows of ``table`` whose ``column`` equals ``value`` (None matches NULL)."""
        if column not in table.all_columns:
            # A projection asking for a column its table lacks is a bug, not bad input: not a KeyError.
            raise StoreError(f"read-model table {table.name} has no column {column!r}", self.where)
        codec = self.codec(table)
        query = sql.select_columns(table, sql.physical(table, shadow))
        if value is None:
            found = tx.execute(f"{query} WHERE {sql.quote(column)} IS NULL")
        else:
            found = tx.execute(f"{query} WHERE {sql.quote(column)} = ?", (codec.encode_value(column, value),))
        return [codec.decode(stored) for stored in found.fetchall()]

    def page(
        self, tx: Transaction, table: Table, equal: Mapping[str, Any], after: Key | None, limit: int
    ) -> list[Row]:
        """At most ``limit`` rows of ``table`` whose columns equal ``equal``, after key ``after``, by key.

        Keyset pagination: the order is the primary key's (text compared by code point on both stores),
        so a page starting after the last key of the previous one neither skips nor repeats a row while
        rows change. The caller chooses which columns may be filtered on (indexed ones).
        """
        unknown = set(equal) - set(table.all_columns)
        if unknown:
            raise StoreError(f"read-model table {table.name} has no columns {sorted(unknown)}", self.where)
        codec = self.codec(table)
        kinds = table.all_columns
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in equal.items():
            if value is None:
                clauses.append(f"{sql.quote(column)} IS NULL")
            else:
                clauses.append(f"{sql.quote(column)} = ?")
                params.append(codec.encode_value(column, value))
        if after is not None:
            encoded = codec.encode_key(after)
            ordered = [
                sql.quote(c) + (self.dialect.text_order if kinds[c] == "text" else "") for c in table.key
            ]
            alternatives = []
            for i in range(len(table.key)):
                equal_prefix = [f"{sql.quote(table.key[j])} = ?" for j in range(i)]
                alternatives.append("(" + " AND ".join([*equal_prefix, f"{ordered[i]} > ?"]) + ")")
                params.extend([*encoded[:i], encoded[i]])
            clauses.append("(" + " OR ".join(alternatives) + ")")
        query = sql.select_columns(table, table.name)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += sql.order_by_key(self.dialect, table) + f" LIMIT {int(limit)}"
        return [codec.decode(stored) for stored in tx.execute(query, tuple(params)).fetchall()]

    def lookup(self, table: Table, key: Key) -> Row | None:
        """The stored row with primary key ``key`` (None if absent), from a snapshot."""
        with self.snapshot() as tx:
            found = self.load(tx, table, [key], False)
        return found[0] if found else None

    @property
    def quick_lookups(self) -> bool:
        """Whether :meth:`lookup` may run on an event loop: not over a network (see SQLite's)."""
        return False

    def load(self, tx: Transaction, table: Table, keys: Sequence[Key], shadow: bool) -> list[Row]:
        """The stored rows of ``table`` with these keys."""
        if not keys:
            return []
        return self._load(tx, table, sql.physical(table, shadow), keys)

    def write(self, tx: Transaction, changes: Iterable[Change], *, shadow: bool = False) -> int:
        """Upsert and delete in bulk, one statement batch per table; returns the number of changes."""
        pending: dict[str, tuple[Table, dict[Key, Row | None]]] = {}
        count = 0
        for table, key, row in changes:
            # The last change of a key wins, as it would have row by row.
            pending.setdefault(table.name, (table, {}))[1][key] = row
            count += 1
        for table, by_key in pending.values():
            codec = self.codec(table)
            name = sql.physical(table, shadow)
            gone = [codec.encode_key(key) for key, row in by_key.items() if row is None]
            kept = [codec.encode(row) for row in by_key.values() if row is not None]
            if gone:
                self._delete(tx, table, name, gone)
            if kept:
                self._upsert(tx, table, name, kept)
        return count

    # -- positions --------------------------------------------------------------------------------

    def positions(self, adapter: str, tx: Transaction | None = None) -> dict[tuple[str, int], int]:
        """The last applied offset per (topic, partition) of ``adapter``, read in ``tx`` or a snapshot."""
        query = f'SELECT topic, partition, "offset" FROM {sql.POSITIONS_TABLE} WHERE adapter = ?'
        if tx is not None:
            found = tx.execute(query, (adapter,)).fetchall()
        else:
            with self.snapshot() as view:
                found = view.execute(query, (adapter,)).fetchall()
        return {(str(topic), int(partition)): int(offset) for topic, partition, offset in found}

    def release_events(self, tx: Transaction, adapter: str, event_ids: Iterable[str]) -> None:
        """Forget that ``adapter`` applied these ids (claimed in ``tx`` for events the model then refused)."""
        tx.executemany(
            f"DELETE FROM {sql.EVENTS_TABLE} WHERE adapter = ? AND event_id = ?",
            [(adapter, event_id) for event_id in event_ids],
        )

    def record_positions(self, tx: Transaction, adapter: str, positions: Positions) -> None:
        """Upsert the positions inside ``tx``, keeping the larger offset of stored and new."""
        if not positions:
            return
        tx.executemany(
            f'INSERT INTO {sql.POSITIONS_TABLE} (adapter, topic, partition, "offset") VALUES (?, ?, ?, ?) '
            f'ON CONFLICT (adapter, topic, partition) DO UPDATE SET "offset" = '
            f'{self.dialect.greatest}({sql.POSITIONS_TABLE}."offset", excluded."offset")',
            [(adapter, topic, partition, offset) for (topic, partition), offset in positions.items()],
        )

    def generation(self, tx: Transaction, adapter: str) -> int:
        """How many write transactions changed ``adapter``'s rows (0: none)."""
        found = tx.execute(f"SELECT generation FROM {sql.GENERATIONS_TABLE} WHERE adapter = ?", (adapter,))
        row = found.fetchone()
        return 0 if row is None else int(row[0])

    def applied_events(self, tx: Transaction, adapter: str, event_ids: Iterable[str]) -> set[str]:
        """Those of ``event_ids`` that ``adapter`` applied already."""
        wanted = list(dict.fromkeys(event_ids))
        seen: set[str] = set()
        for part in sql.chunks(wanted, sql.MAX_LISTED):
            found = tx.execute(
                f"SELECT event_id FROM {sql.EVENTS_TABLE} WHERE adapter = ? "
                f"AND event_id IN ({', '.join('?' for _ in part)})",
                (adapter, *part),
            )
            seen.update(row[0] for row in found.fetchall())
        return seen

    def advance_generation(self, tx: Transaction, adapter: str) -> int:
        """Count one more write transaction of ``adapter``'s tables; returns the new count."""
        tx.execute(
            f"INSERT INTO {sql.GENERATIONS_TABLE} (adapter, generation) VALUES (?, 1) "
            f"ON CONFLICT (adapter) DO UPDATE SET generation = {sql.GENERATIONS_TABLE}.generation + 1",
            (adapter,),
        )
        return self.generation(tx, adapter)

    def _move_tracking(self, tx: Transaction, source: str, target: str) -> None:
        """Replace ``target``'s positions and claimed event ids by ``source``'s; its rows changed."""
        for table in (sql.POSITIONS_TABLE, sql.EVENTS_TABLE):
            tx.execute(f"DELETE FROM {table} WHERE adapter = ?", (target,))
            tx.execute(f"UPDATE {table} SET adapter = ? WHERE adapter = ?", (target, source))
        self.advance_generation(tx, target)

    def _forget_tracking(self, tx: Transaction, adapter: str) -> None:
        for table in (sql.POSITIONS_TABLE, sql.EVENTS_TABLE, sql.GENERATIONS_TABLE):
            tx.execute(f"DELETE FROM {table} WHERE adapter = ?", (adapter,))


class _StoredRows:
    """A :class:`~consumers.readmodel.RowSource` reading through one open transaction."""

    def __init__(self, store: SqlStore, tx: Transaction, shadow: bool) -> None:
        self._store = store
        self._tx = tx
        self._shadow = shadow

    def load(self, table: Table, keys: Sequence[Key]) -> list[Row]:
        """The stored rows with these keys."""
        return self._store.load(self._tx, table, keys, self._shadow)

    def select(self, table: Table, column: str, value: Any) -> list[Row]:
        """The stored rows whose ``column`` equals ``value``."""
        return self._store.select(self._tx, table, column, value, self._shadow)


def internal_tables(int_type: str, extra: str = "") -> list[str]:
    """DDL of the positions, applied-event and generation tables (``extra`` ends the second)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {sql.POSITIONS_TABLE} (adapter TEXT NOT NULL, topic TEXT NOT NULL, "
        f'partition {int_type} NOT NULL, "offset" {int_type} NOT NULL, '
        "PRIMARY KEY (adapter, topic, partition))",
        f"CREATE TABLE IF NOT EXISTS {sql.EVENTS_TABLE} (adapter TEXT NOT NULL, event_id TEXT NOT NULL, "
        f"PRIMARY KEY (adapter, event_id)){extra}",
        f"CREATE TABLE IF NOT EXISTS {sql.GENERATIONS_TABLE} (adapter TEXT NOT NULL PRIMARY KEY, "
        f"generation {int_type} NOT NULL)",
    ]
