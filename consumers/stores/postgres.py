"""The read-model store on PostgreSQL (psycopg 3), for several consumers and many gateway readers.

Each thread gets its own connection. Writes run READ COMMITTED; :meth:`PostgresStore.claim_events`
first takes a per-adapter transaction lock, so the batches of one adapter run one at a time even
across processes (two consumers of one adapter during a rebalance, or sharing a row across
partitions) and every row a batch reads after claiming is the latest committed one. A second
transaction claiming an id that another one is claiming waits for it, then sees the id as already
applied (or gets it, if the first rolled back): it never applies the event a second time.

Snapshots are REPEATABLE READ READ ONLY transactions: consistent, and MVCC never makes them wait for
the writer. Bulk writes, loads and deletes send whole columns as arrays through ``unnest``: one
statement per table and batch instead of one per row.

The URL's password is used to connect and nowhere else: messages name the database through
:func:`bus.urls.redact`, and :attr:`PostgresStore.identity` carries neither user nor password.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
import structlog
from psycopg.pq import TransactionStatus

from bus.urls import MASK, SECRET_PARAMETERS, redact
from consumers.readmodel import Key, Row, Table
from consumers.stores import sql
from consumers.stores.base import StoreError, shadow_adapter
from consumers.stores.common import SqlStore, internal_tables

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 10
# Advisory lock keys (two-int form; the first half spells "gov?" in ASCII, beside the outbox's keys).
LOCK_MIGRATE = 1735358061  # "govm": serialises CREATE ... IF NOT EXISTS of concurrent migrations
LOCK_ADAPTER = 1735358071  # "govw": one writing batch per adapter at a time, second half hashtext(adapter)
ROWS_PER_STATEMENT = 10_000
FETCH_SIZE = 2000
# swap() takes every table lock within LOCK_TRY_MS or lets go of all of them and tries again, so
# that it never waits holding one lock while a reader holding another waits for it (a deadlock).
LOCK_TRY_MS = 200
SWAP_WAIT_S = 120.0
ARRAY_TYPES = {"text": "text[]", "int": "bigint[]", "decimal": "numeric[]", "bool": "boolean[]"}


@lru_cache(maxsize=512)
def pyformat(query: str) -> str:
    """``query`` with ``?`` placeholders as psycopg's ``%s`` (and literal ``%`` doubled)."""
    return query.replace("%", "%%").replace("?", "%s")


class PostgresTransaction:
    """A transaction on one psycopg connection, taking ``?`` placeholders like SQLite."""

    dialect = sql.POSTGRESQL.name

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, query: str, params: Sequence[Any] | None = ()) -> psycopg.Cursor[Any]:
        """Run one statement."""
        if params is None:
            return self._connection.execute(query)
        return self._connection.execute(pyformat(query), params)

    def executemany(self, query: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement per parameter tuple, pipelined by psycopg."""
        with self._connection.cursor() as cursor:
            cursor.executemany(pyformat(query), params)

    def copy_rows(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        """Stream ``rows`` into a ``COPY … FROM STDIN`` statement (formatted in C by psycopg)."""
        with self._connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


class PostgresStore(SqlStore):
    """A read-model store in one PostgreSQL database."""

    dialect = sql.POSTGRESQL

    def __init__(self, url: str) -> None:
        super().__init__(redact(url))
        self._url = url
        connection = self._connection()
        info = connection.info
        self._identity = f"postgresql://{info.host}:{info.port}/{info.dbname}"
        try:
            with self._errors():
                found = connection.execute(
                    "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                    (sql.POSITIONS_TABLE, sql.EVENTS_TABLE),
                ).fetchone()
            # Create only what is missing, so that a reader's role needs no CREATE privilege.
            if not (found and found[0]):
                with self.transaction() as tx:
                    self._lock_schema(tx)
                    for statement in internal_tables("BIGINT"):
                        tx.execute(statement, None)
        except BaseException:
            self.close()
            raise

    @property
    def identity(self) -> str:
        """``postgresql://host:port/dbname``: the server and database, without user or password."""
        return self._identity

    # -- connections and transactions -------------------------------------------------------------

    def _open_connection(self) -> psycopg.Connection[Any]:
        return self._connect(autocommit=True)

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            message = " ".join(str(exc).split())
            hidden = [secret for secret in _secrets(self._url) if secret in message]
            for secret in hidden:
                message = message.replace(secret, MASK)
            error = StoreError(
                f"read-model store {self.where}: cannot connect: {message}", self.where, transient=True
            )
            # The driver's own exception would show the secret again in a traceback.
            raise error from (None if hidden else exc)

    def _usable(self, connection: Any) -> bool:
        return not (connection.closed or connection.broken)

    def _close_connection(self, connection: Any) -> None:
        with suppress(psycopg.Error):
            connection.close()

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """BEGIN … COMMIT (READ COMMITTED), or ROLLBACK when the block raises."""
        connection: psycopg.Connection[Any] = self._connection()
        self._check_idle(connection)
        with self._errors():
            connection.execute("BEGIN")
        with self._errors(), self._rollback_on_error(connection):
            yield PostgresTransaction(connection)
            if connection.info.transaction_status == TransactionStatus.INERROR:
                # COMMIT would quietly roll back a transaction in which a statement failed.
                raise StoreError(
                    f"read-model store {self.where}: a statement failed inside the transaction, "
                    "which was rolled back",
                    self.where,
                )
            connection.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[PostgresTransaction]:
        """A REPEATABLE READ READ ONLY transaction whose snapshot is taken on entry."""
        connection: psycopg.Connection[Any] = self._connection()
        self._check_idle(connection)
        with self._errors():
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                connection.execute("SELECT 1")
                yield PostgresTransaction(connection)
            finally:
                if not connection.broken:
                    connection.execute("ROLLBACK")

    def _check_idle(self, connection: psycopg.Connection[Any]) -> None:
        if connection.info.transaction_status != TransactionStatus.IDLE:
            raise StoreError("a transaction or snapshot is already open on this thread", self.where)

    @contextmanager
    def _rollback_on_error(self, connection: psycopg.Connection[Any]) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if not connection.broken and connection.info.transaction_status != TransactionStatus.IDLE:
                with suppress(psycopg.Error):
                    connection.execute("ROLLBACK")
            raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            transient = isinstance(exc, psycopg.OperationalError) or (exc.sqlstate or "").startswith("40")
            raise StoreError(
                f"read-model store {self.where}: {exc}", self.where, transient=transient
            ) from exc

    # -- the backend half of SqlStore --------------------------------------------------------------

    def _lock_schema(self, tx: Any) -> None:
        # Two CREATE TABLE IF NOT EXISTS of one name at once: one of them fails on the catalog.
        tx.execute("SELECT pg_advisory_xact_lock(?, 0)", (LOCK_MIGRATE,))

    def _stored_columns(self, tx: Any, name: str) -> set[str]:
        found = tx.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (name,),
        )
        return {row[0] for row in found.fetchall()}

    def _key_match(self, table: Table) -> str:
        """A condition matching the keys given as one array parameter per key column."""
        kinds = table.all_columns
        if len(table.key) == 1:
            column = table.key[0]
            return f"{sql.quote(column)} = ANY(?::{ARRAY_TYPES[kinds[column]]})"
        arrays = ", ".join(f"?::{ARRAY_TYPES[kinds[c]]}" for c in table.key)
        return f"({', '.join(sql.quote(c) for c in table.key)}) IN (SELECT * FROM unnest({arrays}))"

    def _load(self, tx: Any, table: Table, name: str, keys: Sequence[Key]) -> list[Row]:
        codec = self.codec(table)
        query = f"{sql.select_columns(table, name)} WHERE {self._key_match(table)}"
        found: list[Row] = []
        for part in sql.chunks(keys, ROWS_PER_STATEMENT):
            columns = [list(values) for values in zip(*part, strict=True)]
            found.extend(codec.decode(row) for row in tx.execute(query, columns).fetchall())
        return found

    def _upsert(self, tx: Any, table: Table, name: str, rows: list[tuple[Any, ...]]) -> None:
        """COPY the rows into a temporary table of the same shape, then upsert from it in one statement.

        Passing the rows as one array per column made psycopg format every value in Python (about 20 µs
        a row); COPY formats them in C. The temporary table lives as long as the connection and is
        emptied by every commit.
        """
        columns = ", ".join(sql.quote(c) for c in table.all_columns)
        others = [c for c in table.all_columns if c not in table.key]
        staging = sql.quote(sql.derived_name(f"{name}__staging"))
        tx.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {sql.quote(name)})", None)
        tx.copy_rows(f"COPY {staging} ({columns}) FROM STDIN", rows)
        tx.execute(
            f"INSERT INTO {sql.quote(name)} ({columns}) SELECT {columns} FROM {staging} "
            f"ON CONFLICT ({', '.join(sql.quote(c) for c in table.key)}) DO UPDATE SET "
            + ", ".join(f"{sql.quote(c)} = excluded.{sql.quote(c)}" for c in others)
            + f"; TRUNCATE {staging}",
            None,
        )

    def _delete(self, tx: Any, table: Table, name: str, keys: list[tuple[Any, ...]]) -> None:
        query = f"DELETE FROM {sql.quote(name)} WHERE {self._key_match(table)}"
        for part in sql.chunks(keys, ROWS_PER_STATEMENT):
            tx.execute(query, [list(values) for values in zip(*part, strict=True)])

    # -- event ids, rebuilds, dumps ----------------------------------------------------------------

    def applied_events(self, tx: Any, adapter: str, event_ids: Iterable[str]) -> set[str]:
        """Those of ``event_ids`` that ``adapter`` applied already (one statement, the ids as an array)."""
        wanted = list(dict.fromkeys(event_ids))
        if not wanted:
            return set()
        found = tx.execute(
            f"SELECT event_id FROM {sql.EVENTS_TABLE} WHERE adapter = ? AND event_id = ANY(?::text[])",
            (adapter, wanted),
        )
        return {row[0] for row in found.fetchall()}

    def claim_events(self, tx: Any, adapter: str, event_ids: Iterable[str]) -> set[str]:
        """Record the ids as applied by ``adapter`` in ``tx``; returns the ids it had not applied before.

        Call it first in a batch: it waits until no other transaction of ``adapter`` is open, so a
        concurrent claim of the same id is seen here as already applied once the other commits.
        """
        tx.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_ADAPTER, adapter))
        wanted = list(dict.fromkeys(event_ids))
        if not wanted:
            return set()
        found = tx.execute(
            f"INSERT INTO {sql.EVENTS_TABLE} (adapter, event_id) SELECT ?, unnest(?::text[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            (adapter, wanted),
        )
        return {row[0] for row in found.fetchall()}

    def shadow(self, tables: Iterable[Table], adapter: str) -> None:
        """Create empty ``{table}__rebuild`` copies (dropping leftovers) and forget the rebuild's tracking."""
        with self.transaction() as tx:
            self._lock_schema(tx)
            for table in tables:
                sql.check_table(table)
                name = sql.physical(table, True)
                tx.execute(f"DROP TABLE IF EXISTS {sql.quote(name)}", None)
                for statement in sql.create_table(self.dialect, table, name):
                    tx.execute(statement, None)
            self._forget_tracking(tx, shadow_adapter(adapter))

    def swap(self, tables: Iterable[Table], adapter: str) -> None:
        """Replace the live tables, positions and event ids by the rebuild's, in one transaction.

        It waits for the adapter's open batch and for readers of the tables to finish; readers that
        start meanwhile wait for the swap (milliseconds: renames only), then see the new tables. The
        live tables' grants are given to the new ones.
        """
        tables = list(tables)
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_ADAPTER, adapter))
            self._lock_schema(tx)
            live = [t.name for t in tables if self._stored_columns(tx, t.name)]
            for table in tables:
                if not self._stored_columns(tx, sql.physical(table, True)):
                    raise StoreError(f"no rebuild of {table.name} to swap in ({self.where})", self.where)
            self._move_tracking(tx, shadow_adapter(adapter), adapter)
            self._lock_tables(tx, [*live, *(sql.physical(t, True) for t in tables)])
            for table in tables:
                shadow = sql.physical(table, True)
                self._copy_grants(tx, table.name, shadow)
                tx.execute(f"DROP TABLE IF EXISTS {sql.quote(table.name)}", None)
                tx.execute(f"ALTER TABLE {sql.quote(shadow)} RENAME TO {sql.quote(table.name)}", None)
                tx.execute(
                    f"ALTER TABLE {sql.quote(table.name)} RENAME CONSTRAINT "
                    f"{sql.quote(sql.pkey_name(shadow))} TO {sql.quote(sql.pkey_name(table.name))}",
                    None,
                )
                for columns in table.indexes:
                    tx.execute(
                        f"ALTER INDEX {sql.quote(sql.index_name(shadow, columns))} "
                        f"RENAME TO {sql.quote(sql.index_name(table.name, columns))}",
                        None,
                    )

    def _lock_tables(self, tx: Any, names: list[str]) -> None:
        listed = ", ".join(sql.quote(name) for name in names)
        deadline = time.monotonic() + SWAP_WAIT_S
        while True:
            tx.execute("SAVEPOINT swap_locks", None)
            tx.execute(f"SET LOCAL lock_timeout = '{LOCK_TRY_MS}ms'", None)
            try:
                tx.execute(f"LOCK TABLE {listed} IN ACCESS EXCLUSIVE MODE", None)
            except psycopg.errors.LockNotAvailable:
                tx.execute("ROLLBACK TO SAVEPOINT swap_locks", None)
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"read-model store {self.where}: readers held {listed} for over {SWAP_WAIT_S:.0f} s; "
                        "the swap was rolled back",
                        self.where,
                        transient=True,
                    ) from None
                log.info("store.swap.waiting_for_readers", store=self.where, tables=names)
                continue
            tx.execute("RESET lock_timeout", None)
            tx.execute("RELEASE SAVEPOINT swap_locks", None)
            return

    def _copy_grants(self, tx: Any, live: str, shadow: str) -> None:
        grants = tx.execute(
            "SELECT format('GRANT %s ON %I TO %s', privilege_type, ?::text, "
            "CASE WHEN grantee = 'PUBLIC' THEN 'PUBLIC' ELSE quote_ident(grantee) END) "
            "FROM information_schema.role_table_grants "
            "WHERE table_schema = current_schema() AND table_name = ? AND grantee <> current_user",
            (shadow, live),
        ).fetchall()
        for (statement,) in grants:
            tx.execute(statement, None)

    def dump(self, table: Table, *, shadow: bool = False) -> Iterator[Row]:
        """Every row of ``table`` sorted by key, from one snapshot on a connection of its own."""
        codec = self.codec(table)
        query = sql.select_columns(table, sql.physical(table, shadow)) + sql.order_by_key(self.dialect, table)
        connection = self._connect(autocommit=False)
        try:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            with self._errors(), connection.cursor(name="govbus_dump") as cursor:
                cursor.itersize = FETCH_SIZE
                cursor.execute(query)
                yield from (codec.decode(row) for row in cursor)
        finally:
            connection.close()


def _secrets(url: str) -> set[str]:
    """The passwords ``url`` holds (user part and query), as written and decoded."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        return set()
    found += [value for name, value in parse_qsl(parts.query) if name.lower() in SECRET_PARAMETERS]
    return {form for secret in found if secret for form in (secret, unquote(secret))}
