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

A URL that cannot name a database (not UTF-8, a host part that does not parse, a host name no resolver
accepts) is a :class:`~bus.errors.ConfigurationError` before any connection is tried; its message shows
the URL through :func:`bus.urls.redact`, so no password reaches a terminal or a log.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

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
SHOWN_HOST_CHARS = 60

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
        _check_postgres_url(url)
        return PostgresStore(url)
    raise ConfigurationError(
        f"unsupported read-model URL {redact(url)!r}; expected sqlite:///PATH or postgresql://..."
    )


def _check_postgres_url(url: str) -> None:
    """Raise ConfigurationError for a PostgreSQL URL the driver would fail on with a traceback or a leak.

    The driver encodes the URL as UTF-8 and host names with IDNA, raising UnicodeError (not one of its
    own errors) when it cannot; and libpq quotes the whole URL, password included, when a bracketed
    host does not parse. What libpq reports without either stays the store's connection error.
    """
    expected = "expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"read-model URL {redact(url)!r} is not valid UTF-8; {expected}") from None
    try:
        urlsplit(url)
    except ValueError:
        raise ConfigurationError(
            f"read-model URL {redact(url)!r} has a host part that does not parse; {expected}"
        ) from None
    try:
        hosts = str(conninfo_to_dict(url).get("host", ""))
    except psycopg.Error:
        return  # PostgresStore reports it, with any password masked
    for host in hosts.split(","):
        if host.startswith("/") or ":" in host:  # a socket folder or an IPv6 address: no IDNA
            continue
        try:
            host.encode("idna")
        except UnicodeError:
            shown = host if len(host) <= SHOWN_HOST_CHARS else f"{host[:SHOWN_HOST_CHARS]}..."
            raise ConfigurationError(
                f"read-model URL {redact(url)[: SHOWN_HOST_CHARS * 2]!r} names host {shown!r}, which is "
                "not a valid host name (each dot-separated label has 1 to 63 characters)"
            ) from None
