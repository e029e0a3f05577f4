"""Read-model stores: SQLite (the embedded default) and PostgreSQL behind one :class:`Store` port.

A store keeps four things that change together, in one transaction per batch:

* the read models' **tables**, created from :class:`~consumers.readmodel.Table` specs by
  :meth:`Store.migrate`, read through :meth:`Store.rows` (a :class:`~consumers.readmodel.RowSource`)
  and written in bulk by :meth:`Store.write` from a working set's changes;
* each adapter's **positions**, the last applied offset per topic and partition
  (:meth:`Store.record_positions` never moves one back);
* each adapter's **applied event ids** (:meth:`Store.claim_events`), so that a copy of an event with
  a known id is skipped wherever it comes from: an outbox re-ship, a re-publish, a replay;
* each adapter's **generation** (:meth:`Store.advance_generation`), a count of the transactions that
  wrote its rows, by which a runner knows whether the rows it kept in memory are still current.

A rebuild fills ``{table}__rebuild`` copies (:meth:`Store.shadow`, then ``rows``/``write`` with
``shadow=True`` and positions and event ids under :func:`shadow_adapter`) and :meth:`Store.swap`
puts them in place in one transaction, so a reader sees either the old tables or the new ones.

Open a store with :func:`open_store` from ``GOVBUS_READMODEL_URL``:

* ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite``
  (:mod:`consumers.stores.sqlite`);
* ``postgresql://user:password@host:port/dbname`` (:mod:`consumers.stores.postgres`).
"""

from __future__ import annotations

from pathlib import Path

from bus.errors import ConfigurationError
from bus.urls import redact
from consumers.stores.base import (
    REBUILD_SUFFIX,
    Change,
    Cursor,
    Positions,
    Store,
    StoreError,
    Transaction,
    shadow_adapter,
)
from consumers.stores.postgres import PostgresStore
from consumers.stores.sqlite import SqliteStore

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")

__all__ = [
    "REBUILD_SUFFIX",
    "Change",
    "Cursor",
    "Positions",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "Transaction",
    "open_store",
    "shadow_adapter",
]


def open_store(url: str, *, create_folder: bool = False) -> Store:
    """The store ``url`` names.

    A SQLite file is created when missing, but its folder must exist unless ``create_folder`` (the
    embedded default under ``GOVBUS_HOME`` sets it): a mistyped path is an error, not a new database.
    """
    if url.startswith(SQLITE_PREFIX):
        path = Path(url[len(SQLITE_PREFIX) :])
        if not path.name:
            raise ConfigurationError(f"read-model URL {url!r} names no file; expected sqlite:///PATH")
        if create_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            raise ConfigurationError(
                f"read-model folder {path.parent} does not exist (from {url}); create it or fix the URL"
            )
        return SqliteStore(path)
    if url.startswith(POSTGRES_PREFIXES):
        return PostgresStore(url)
    raise ConfigurationError(
        f"unsupported read-model URL {redact(url)!r}; expected sqlite:///PATH or postgresql://..."
    )
