"""The store port: what the projection runtime, the rebuild and the gateway need from a database.

Both adapters (:mod:`consumers.stores.sqlite`, :mod:`consumers.stores.postgres`) implement
:class:`Store`; one contract test suite runs on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bus.errors import GovbusError
from consumers.readmodel import Key, Row, RowSource, Table

Change = tuple[Table, Key, Row | None]
"""One change of a working set: the table, the row's key and the row to upsert, or None to delete."""

Positions = Mapping[tuple[str, int], int]
"""The last applied offset per (topic, partition)."""

REBUILD_SUFFIX = "__rebuild"


def shadow_adapter(adapter: str) -> str:
    """The name under which a rebuild of ``adapter`` records its positions and claimed event ids."""
    return adapter + REBUILD_SUFFIX


class StoreError(GovbusError):
    """A read-model database could not be opened, or a statement on it failed.

    ``where`` names the database without credentials; ``transient`` is true when trying again may
    succeed (a lost connection, a lock or serialization conflict, a busy SQLite file).
    """

    def __init__(self, message: str, where: str = "", *, transient: bool = False) -> None:
        super().__init__(message)
        self.where = where
        self.transient = transient


class Cursor(Protocol):
    """The result of one statement."""

    @property
    def rowcount(self) -> int:
        """Rows changed by the statement (-1 when unknown)."""
        ...

    def fetchone(self) -> Any:
        """The next row as a tuple, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows as tuples."""
        ...


class Transaction(Protocol):
    """An open transaction. SQL uses ``?`` placeholders on every backend.

    ``?`` is always a placeholder (never put one inside a string literal); pass ``params=None`` for a
    statement that has none and contains a literal ``%``.
    """

    dialect: str
    """``sqlite`` or ``postgresql``: for the rare statement that must differ."""

    def execute(self, query: str, params: Sequence[Any] | None = ()) -> Cursor:
        """Run one statement."""
        ...

    def executemany(self, query: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter tuple, in as few round trips as the driver allows."""
        ...


class Store(Protocol):
    """A read-model database: view tables, positions and applied event ids, changed together."""

    @property
    def identity(self) -> str:
        """A stable name of the database without credentials (a resolved file path, host:port/db)."""
        ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: commits when the block ends, rolls back when it raises."""
        ...

    def snapshot(self) -> AbstractContextManager[Transaction]:
        """A read-only view, consistent for the whole block, that never blocks the writer."""
        ...

    def migrate(self, tables: Iterable[Table]) -> None:
        """Create the tables and their indexes when missing; refuse a stored table of other columns."""
        ...

    def rows(self, tx: Transaction, *, shadow: bool = False) -> RowSource:
        """A row source over ``tx`` (over the rebuild's tables when ``shadow``), values as Python types."""
        ...

    def write(self, tx: Transaction, changes: Iterable[Change], *, shadow: bool = False) -> int:
        """Upsert and delete in bulk inside ``tx``; returns how many changes were written."""
        ...

    def page(
        self, tx: Transaction, table: Table, equal: Mapping[str, Any], after: Key | None, limit: int
    ) -> list[Row]:
        """At most ``limit`` rows whose columns equal ``equal``, with keys after ``after``, in key order."""
        ...

    def lookup(self, table: Table, key: Key) -> Row | None:
        """The stored row of ``table`` with primary key ``key``, read in one statement (None if absent)."""
        ...

    @property
    def quick_lookups(self) -> bool:
        """Whether :meth:`lookup` is quick enough to call on an event loop (a local file, no network)."""
        ...

    def positions(self, adapter: str, tx: Transaction | None = None) -> dict[tuple[str, int], int]:
        """The last applied offset per (topic, partition) of ``adapter``.

        Read in ``tx`` when given, else in a snapshot of its own (so not while this thread has one open).
        """
        ...

    def record_positions(self, tx: Transaction, adapter: str, positions: Positions) -> None:
        """Record offsets inside ``tx``; a stored position never moves back (the larger one is kept)."""
        ...

    def claim_events(self, tx: Transaction, adapter: str, event_ids: Iterable[str]) -> set[str]:
        """Record ``event_ids`` as applied by ``adapter`` inside ``tx``; returns those not seen before.

        Call it first in a write transaction: it also waits for any other open write transaction of
        ``adapter`` (another process during a rebalance), so what is read next is current and an id
        that transaction claimed is seen here as applied once it commits (or new, if it rolls back).
        """
        ...

    def release_events(self, tx: Transaction, adapter: str, event_ids: Iterable[str]) -> None:
        """Forget, inside ``tx``, that ``adapter`` applied these ids (the model refused those events)."""
        ...

    def applied_events(self, tx: Transaction, adapter: str, event_ids: Iterable[str]) -> set[str]:
        """Those of ``event_ids`` that ``adapter`` applied already (read only; ``tx`` may be a snapshot)."""
        ...

    def generation(self, tx: Transaction, adapter: str) -> int:
        """How many write transactions changed ``adapter``'s rows (0: none); ``tx`` may be a snapshot."""
        ...

    def advance_generation(self, tx: Transaction, adapter: str) -> int:
        """Count one more write transaction of ``adapter``'s tables inside ``tx``; returns the new count.

        Every writer of an adapter's rows calls it (after :meth:`claim_events`): the runner, a replay
        of dead letters, and a swap of rebuilt tables. A writer that read the count as ``n`` before
        deciding what to write and gets ``n + 1`` here knows nobody else changed the adapter's rows,
        positions or event ids in between: what it decided on is still what is stored.
        """
        ...

    def shadow(self, tables: Iterable[Table], adapter: str) -> None:
        """Create empty ``{table}__rebuild`` copies and forget the rebuild's positions and event ids."""
        ...

    def swap(self, tables: Iterable[Table], adapter: str) -> None:
        """In one transaction, put the rebuilt tables, positions and event ids in place of the live ones."""
        ...

    def dump(self, table: Table, *, shadow: bool = False) -> Iterator[Row]:
        """Every row of ``table`` sorted by key, read from one snapshot on a connection of its own."""
        ...

    def close(self) -> None:
        """Close every connection the store opened."""
        ...
