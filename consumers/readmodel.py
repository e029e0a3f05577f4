"""Read models as tables of keyed rows, changed by pure functions of events.

A read model (:class:`ReadModel`) declares its tables (:class:`Table`: columns with portable types, a
primary key) and applies one event at a time to a :class:`WorkingSet`, an in-memory view of the rows a
batch touches. The working set is the seam between the pure core and the store:

* the projection reads rows (:meth:`WorkingSet.get`, :meth:`WorkingSet.find`) and writes rows
  (:meth:`WorkingSet.put`, :meth:`WorkingSet.delete`) as plain dicts, never SQL;
* every row written is stamped with its **provenance** (source agency, event id, topic, partition,
  offset, event time) from the event being applied;
* an event the projection refuses (it raises) leaves no trace: its changes are staged per event and
  dropped on :meth:`WorkingSet.rollback`;
* rows are loaded from a :class:`RowSource` (the store, or a dict in unit tests) the first time they
  are asked for, in one query per table for a batch's prefetched keys, and written back by the
  runtime in bulk (:meth:`WorkingSet.changes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from consumers.events import DecodedEvent

Row = dict[str, Any]
Key = tuple[Any, ...]

COLUMN_TYPES = ("text", "int", "decimal", "bool")
"""Portable column types: ``text`` (str, ISO dates too), ``int``, ``decimal`` (exact, e.g. KRW), ``bool``."""

PROVENANCE: tuple[tuple[str, str], ...] = (
    ("source_agency", "text"),
    ("event_id", "text"),
    ("event_topic", "text"),
    ("event_partition", "int"),
    ("event_offset", "int"),
    ("event_time", "text"),
)
"""Columns every read-model table has: where the row's current state came from."""


@dataclass(frozen=True)
class Derived:
    """The contract of a column no catalog field of the model's topics carries under its name.

    A column named like a catalog field of its model's topics takes that field's classification, doc and
    mask (the gateway's disclosure reads them). A column the projection computes says here what it holds
    and either the catalog field it is taken from (``source``, a field name or dotted path: its
    classification and mask apply) or its own ``classification``.
    """

    doc: str
    source: str | None = None
    classification: str | None = None


@dataclass(frozen=True)
class Table:
    """One table of a read model: its columns (name → portable type) and primary key.

    The provenance columns are added to every table; do not declare them. ``derived`` describes each
    column that no catalog field names (:class:`Derived`).
    """

    name: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    nullable: frozenset[str] = field(default_factory=frozenset)
    derived: Mapping[str, Derived] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        unknown = {c: t for c, t in self.columns.items() if t not in COLUMN_TYPES}
        if unknown:
            raise ValueError(f"table {self.name}: unknown column types {unknown}")
        if not set(self.key) <= set(self.columns):
            raise ValueError(f"table {self.name}: key {self.key} is not among its columns")

    @property
    def all_columns(self) -> dict[str, str]:
        """The declared columns followed by the provenance columns."""
        return {**self.columns, **dict(PROVENANCE)}

    def key_of(self, row: Mapping[str, Any]) -> Key:
        """The primary key of ``row``."""
        return tuple(row[c] for c in self.key)


class ReadModel(Protocol):
    """A read model: its adapter name, the topics it reads, its tables and how one event changes them."""

    name: str
    topics: tuple[str, ...]
    tables: tuple[Table, ...]

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The rows ``event`` will read, so a batch loads them in one query per table (a hint only)."""
        ...

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Change ``rows`` as ``event`` says; raise ProjectionError (or KeyError/ValueError) to refuse it."""
        ...


class RowSource(Protocol):
    """Where a working set loads rows that it has not seen yet."""

    def load(self, table: Table, keys: Sequence[Key]) -> list[Row]:
        """The stored rows of ``table`` with these primary keys (missing ones are left out)."""
        ...

    def select(self, table: Table, column: str, value: Any) -> list[Row]:
        """The stored rows of ``table`` whose ``column`` equals ``value``."""
        ...


class MemoryRows:
    """A :class:`RowSource` over dicts: the store of unit tests, and of projections replayed in memory."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, Row]] = {}

    def load(self, table: Table, keys: Sequence[Key]) -> list[Row]:
        """The rows with these keys."""
        stored = self.tables.get(table.name, {})
        return [dict(stored[k]) for k in keys if k in stored]

    def select(self, table: Table, column: str, value: Any) -> list[Row]:
        """The rows whose ``column`` equals ``value``."""
        return [dict(r) for r in self.tables.get(table.name, {}).values() if r.get(column) == value]

    def write(self, changes: Iterable[tuple[Table, Key, Row | None]]) -> None:
        """Apply a working set's changes (``None`` deletes)."""
        for table, key, row in changes:
            stored = self.tables.setdefault(table.name, {})
            if row is None:
                stored.pop(key, None)
            else:
                stored[key] = dict(row)

    def rows(self, table: str) -> list[Row]:
        """Every row of ``table``, sorted by key."""
        return [self.tables[table][k] for k in sorted(self.tables.get(table, {}))]


_MISSING = object()


class RowCache:
    """Rows a runner keeps between its batches (``None``: known to be absent), table by table.

    Valid only while nobody else writes the tables (the runner checks the store's generation);
    :meth:`clear` forgets everything.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        """How many rows may be kept; beyond it, :meth:`trim` forgets them all."""
        self._tables: dict[str, dict[Key, Row | None]] = {}

    def table(self, name: str) -> dict[Key, Row | None]:
        """The kept rows of table ``name`` (a working set adds to this dict)."""
        return self._tables.setdefault(name, {})

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._tables.values())

    def clear(self) -> None:
        """Forget every row."""
        self._tables.clear()

    def trim(self) -> None:
        """Forget every row when more than :attr:`limit` are kept (the next batches load them again)."""
        if len(self) > self.limit:
            self.clear()


class WorkingSet:
    """The rows one batch reads and writes, with each event's changes staged until it is accepted."""

    def __init__(self, source: RowSource, tables: Iterable[Table], known: RowCache | None = None) -> None:
        """``known``: rows kept from earlier batches that are still the stored ones (see :class:`RowCache`);
        the rows this batch loads and accepts are added to it."""
        self._source = source
        self.tables = {t.name: t for t in tables}
        cache = RowCache() if known is None else known
        self._loaded: dict[str, dict[Key, Row | None]] = {name: cache.table(name) for name in self.tables}
        self._dirty: dict[str, set[Key]] = {name: set() for name in self.tables}
        self._staged: dict[tuple[str, Key], Row | None] = {}
        self._selected: dict[tuple[str, str, Any], list[Key]] = {}  # the lookups already asked of the source
        self._event: DecodedEvent | None = None
        self._provenance: Row = {}
        # put() is every projection's hot path: each column's class is looked up once per table.
        self._columns = {
            t.name: tuple((column, _CLASSES[kind], kind) for column, kind in t.columns.items())
            for t in self.tables.values()
        }

    # -- the batch: prefetch, one event at a time, changes ------------------------------------

    def prefetch(self, wanted: Iterable[tuple[str, Key]]) -> None:
        """Load these rows (one query per table) unless already loaded."""
        by_table: dict[str, list[Key]] = {}
        for name, key in wanted:
            if key not in self._loaded[name]:
                by_table.setdefault(name, []).append(key)
        for name, keys in by_table.items():
            self._fill(name, list(dict.fromkeys(keys)))

    def begin(self, event: DecodedEvent) -> None:
        """Start applying ``event``: its writes are staged and stamped with its provenance."""
        self._staged.clear()
        self._event = event
        self._provenance = {
            "source_agency": event.source.rsplit(":", 1)[-1],
            "event_id": event.id,
            "event_topic": event.topic,
            "event_partition": event.partition,
            "event_offset": event.offset,
            "event_time": event.time.isoformat(),
        }

    def commit(self) -> None:
        """Accept the current event's writes."""
        for (name, key), row in self._staged.items():
            self._loaded[name][key] = row
            self._dirty[name].add(key)
        self._staged.clear()
        self._event = None

    def rollback(self) -> None:
        """Drop the current event's writes."""
        self._staged.clear()
        self._event = None

    def changes(self) -> Iterator[tuple[Table, Key, Row | None]]:
        """Every accepted change of the batch: the row to upsert, or ``None`` to delete."""
        for name, keys in self._dirty.items():
            table = self.tables[name]
            for key in sorted(keys, key=_sortable):
                yield table, key, self._loaded[name][key]

    # -- what a projection calls ----------------------------------------------------------------

    def get(self, table: str, *key: Any) -> Row | None:
        """A copy of the row of ``table`` with primary key ``key``, or None."""
        row = self._current(table, tuple(key))
        return None if row is None else dict(row)

    def find(self, table: str, column: str, value: Any) -> list[Row]:
        """Copies of the rows of ``table`` whose ``column`` equals ``value``, sorted by key."""
        spec = self.tables[table]
        lookup = (table, column, value)
        if lookup not in self._selected:
            stored = self._selected[lookup] = []
            for row in self._source.select(spec, column, value):
                stored.append(spec.key_of(row))
                self._loaded[table].setdefault(stored[-1], row)
        # The stored matches, and whatever this batch changed: a row it changed may match now.
        keys = {*self._selected[lookup], *self._dirty[table]}
        keys |= {k for (name, k), r in self._staged.items() if name == table and r is not None}
        found = [self._current(table, k) for k in sorted(keys, key=_sortable)]
        return [dict(r) for r in found if r is not None and r.get(column) == value]

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        """Insert or replace a row (declared columns; provenance is added from the current event)."""
        spec = self.tables[table]
        if self._event is None:
            raise RuntimeError("put outside begin()/commit()")
        stored: Row = {}
        # A value already of its column's class is kept as it is.
        for column, cls, kind in self._columns[table]:
            value = row.get(column)
            if value is None:
                if column not in spec.nullable and column not in row:
                    missing = sorted(set(spec.columns) - set(row) - spec.nullable)
                    raise KeyError(f"{table}: row lacks {missing}")
                stored[column] = None
            elif value.__class__ is cls:
                stored[column] = value
            else:
                stored[column] = _portable(value, kind)
        stored.update(self._provenance)
        self._staged[(table, spec.key_of(stored))] = stored

    def delete(self, table: str, *key: Any) -> None:
        """Remove the row of ``table`` with primary key ``key`` (nothing if there is none)."""
        if self._event is None:
            raise RuntimeError("delete outside begin()/commit()")
        if self._current(table, tuple(key)) is not None:
            self._staged[(table, tuple(key))] = None

    # -- internals ------------------------------------------------------------------------------

    def _current(self, table: str, key: Key) -> Row | None:
        staged = self._staged.get((table, key), _MISSING)
        if staged is not _MISSING:
            return staged  # type: ignore[return-value]
        loaded = self._loaded[table]
        if key not in loaded:
            self._fill(table, [key])
        return loaded[key]

    def _fill(self, table: str, keys: list[Key]) -> None:
        spec = self.tables[table]
        loaded = self._loaded[table]
        for row in self._source.load(spec, keys):
            loaded[spec.key_of(row)] = row
        for key in keys:
            loaded.setdefault(key, None)


_CLASSES: dict[str, type] = {"text": str, "int": int, "decimal": Decimal, "bool": bool}
_BOOL_TEXT = {"true": True, "1": True, "false": False, "0": False}


def _portable(value: Any, kind: str) -> Any:
    """``value`` as the column type keeps it: exact decimals, ints, bools, ISO text."""
    if value is None:
        return None
    if kind == "decimal":
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if kind == "int":
        return int(value)
    if kind == "bool":
        if isinstance(value, str):
            if value.lower() not in _BOOL_TEXT:
                raise ValueError(f"not a boolean: {value!r}")
            return _BOOL_TEXT[value.lower()]
        return bool(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _sortable(key: Key) -> tuple[tuple[int, Any], ...]:
    """A sort key that orders numbers as numbers and text as text (None first) within each key part."""
    return tuple(
        (0, 0) if part is None else (1, part) if isinstance(part, int | Decimal) else (2, str(part))
        for part in key
    )
