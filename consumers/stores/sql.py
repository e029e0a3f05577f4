"""SQL both stores share: table DDL from :class:`~consumers.readmodel.Table` specs, upserts, value codecs.

Portable column types map to SQL types per dialect:

============  ===============  ==================  ==========================================
portable      SQLite           PostgreSQL          Python value read back
============  ===============  ==================  ==========================================
``text``      TEXT             TEXT                ``str``
``int``       INTEGER          BIGINT              ``int``
``decimal``   TEXT             NUMERIC             ``decimal.Decimal``, exactly as written
``bool``      INTEGER (0/1)    BOOLEAN             ``bool``
============  ===============  ==================  ==========================================

SQLite keeps decimals as their exact text (``str(value)``: ``1234.50``, ``1E-7``) because its NUMERIC
affinity would round them through a double; so SQL arithmetic and ordering on a decimal column are
not exact there: compute in Python (the projections do) or on PostgreSQL.

Every name is checked against :data:`NAME` and double-quoted, so no name from a spec can change a
statement's meaning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any

from consumers.readmodel import Key, Row, Table
from consumers.stores.base import REBUILD_SUFFIX

NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
MAX_NAME = 63  # PostgreSQL truncates longer identifiers, which could make two index names collide

POSITIONS_TABLE = "govbus_positions"
EVENTS_TABLE = "govbus_applied_events"
GENERATIONS_TABLE = "govbus_generations"
INTERNAL_TABLES = frozenset({POSITIONS_TABLE, EVENTS_TABLE, GENERATIONS_TABLE})

MAX_LISTED = 998
"""Values listed in one ``IN (...)`` with one more parameter: under the 999 of SQLite builds before 3.32."""

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL of the two stores."""

    name: str
    types: Mapping[str, str]
    greatest: str
    """The two-argument maximum: ``max`` in SQLite, ``GREATEST`` in PostgreSQL."""
    text_order: str
    """Appended to ORDER BY on a text column so that both stores sort by code point."""
    encoders: Mapping[str, Encode]
    decoders: Mapping[str, Decode]


def _decimal_text(value: Any) -> Any:
    if value is None:
        return None
    return str(value if isinstance(value, Decimal) else Decimal(str(value)))


def _decimal_from_text(value: Any) -> Any:
    return None if value is None else Decimal(value)


def _int_from_bool(value: Any) -> Any:
    return None if value is None else int(bool(value))


def _bool_from_int(value: Any) -> Any:
    return None if value is None else bool(value)


SQLITE = Dialect(
    name="sqlite",
    types={"text": "TEXT", "int": "INTEGER", "decimal": "TEXT", "bool": "INTEGER"},
    greatest="max",
    text_order="",
    encoders={"decimal": _decimal_text, "bool": _int_from_bool},
    decoders={"decimal": _decimal_from_text, "bool": _bool_from_int},
)
POSTGRESQL = Dialect(
    name="postgresql",
    types={"text": "TEXT", "int": "BIGINT", "decimal": "NUMERIC", "bool": "BOOLEAN"},
    greatest="GREATEST",
    text_order=' COLLATE "C"',
    encoders={},
    decoders={},
)


def quote(name: str) -> str:
    """``name`` double-quoted, after checking it is a plain lower-case identifier."""
    if not NAME.match(name) or len(name) > MAX_NAME:
        raise ValueError(f"{name!r} is not a usable table or column name (a-z, 0-9, _; at most 63)")
    return f'"{name}"'


def physical(table: Table, shadow: bool) -> str:
    """The stored name of ``table``: its own, or its rebuild copy's."""
    return table.name + REBUILD_SUFFIX if shadow else table.name


def pkey_name(name: str) -> str:
    """The primary key constraint's name for stored table ``name``."""
    return f"{name}__pkey"


def index_name(name: str, columns: Sequence[str]) -> str:
    """The index name for ``columns`` of stored table ``name``; hashed when it would be too long."""
    return derived_name(f"{name}__by__{'__'.join(columns)}")


def derived_name(full: str) -> str:
    """``full`` as a name of at most :data:`MAX_NAME` characters (its end replaced by a hash if longer)."""
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:12]
    return f"{full[: MAX_NAME - 14]}__{digest}"


def check_table(table: Table) -> None:
    """Refuse a spec whose names cannot be stored, or that takes an internal table's name."""
    if table.name in INTERNAL_TABLES:
        raise ValueError(f"{table.name!r} is the name of a store-internal table")
    for name in (physical(table, True), *table.all_columns):
        quote(name)
    for columns in table.indexes:
        unknown = set(columns) - set(table.all_columns)
        if unknown:
            raise ValueError(f"table {table.name}: index on unknown columns {sorted(unknown)}")


def create_table(dialect: Dialect, table: Table, name: str) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements (IF NOT EXISTS) for ``table`` stored as ``name``."""
    nullable = table.nullable - set(table.key)
    columns = [
        f"{quote(column)} {dialect.types[kind]}{'' if column in nullable else ' NOT NULL'}"
        for column, kind in table.all_columns.items()
    ]
    key = ", ".join(quote(c) for c in table.key)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {quote(name)} ({', '.join(columns)}, "
        f"CONSTRAINT {quote(pkey_name(name))} PRIMARY KEY ({key}))"
    ]
    statements.extend(create_index(table, name, columns) for columns in table.indexes)
    return statements


def create_index(table: Table, name: str, columns: Sequence[str]) -> str:
    """CREATE INDEX IF NOT EXISTS on ``columns`` of ``table`` stored as ``name``."""
    listed = ", ".join(quote(c) for c in columns)
    return f"CREATE INDEX IF NOT EXISTS {quote(index_name(name, columns))} ON {quote(name)} ({listed})"


def upsert(table: Table, name: str) -> str:
    """INSERT of one row (``?`` placeholders) that replaces the stored row of the same key."""
    columns = list(table.all_columns)
    others = [c for c in columns if c not in table.key]
    return (
        f"INSERT INTO {quote(name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(quote(c) for c in table.key)}) DO UPDATE SET "
        + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
    )


def select_columns(table: Table, name: str) -> str:
    """``SELECT <every column> FROM <name>``."""
    return f"SELECT {', '.join(quote(c) for c in table.all_columns)} FROM {quote(name)}"


def order_by_key(dialect: Dialect, table: Table) -> str:
    """An ORDER BY clause sorting by primary key the same way on both stores."""
    kinds = table.all_columns
    return " ORDER BY " + ", ".join(
        quote(c) + (dialect.text_order if kinds[c] == "text" else "") for c in table.key
    )


class RowCodec:
    """Turns rows into statement parameters and stored tuples back into rows, for one table and dialect."""

    def __init__(self, dialect: Dialect, table: Table) -> None:
        kinds = table.all_columns
        self.columns = tuple(kinds)
        self._values = itemgetter(*self.columns)
        # Only the columns whose values the dialect converts; the rest pass through untouched.
        self._encoders = [
            (i, dialect.encoders[k]) for i, k in enumerate(kinds.values()) if k in dialect.encoders
        ]
        self._decoders = [(c, dialect.decoders[k]) for c, k in kinds.items() if k in dialect.decoders]
        self._key_encoders = tuple(dialect.encoders.get(kinds[c]) for c in table.key)
        self._column_encoders = {c: dialect.encoders.get(k) for c, k in kinds.items()}

    def encode(self, row: Row) -> tuple[Any, ...]:
        """``row`` as parameters in column order; a missing column is NULL (refused unless nullable)."""
        try:
            values: tuple[Any, ...] = self._values(row)
        except KeyError:
            values = tuple(map(row.get, self.columns))
        if not self._encoders:
            return values
        converted = list(values)
        for index, encoder in self._encoders:
            converted[index] = encoder(converted[index])
        return tuple(converted)

    def encode_key(self, key: Key) -> tuple[Any, ...]:
        """``key`` as parameters."""
        return tuple(v if e is None else e(v) for v, e in zip(key, self._key_encoders, strict=True))

    def encode_value(self, column: str, value: Any) -> Any:
        """``value`` of ``column`` as a parameter."""
        encoder = self._column_encoders[column]
        return value if encoder is None else encoder(value)

    def decode(self, stored: Sequence[Any]) -> Row:
        """A stored tuple (in column order) as a row of Python values."""
        row = dict(zip(self.columns, stored, strict=True))
        for column, decoder in self._decoders:
            row[column] = decoder(row[column])
        return row


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
