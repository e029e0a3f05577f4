"""The read-model store contract on a real PostgreSQL server, plus what only PostgreSQL has: roles, grants."""

from __future__ import annotations

import time
from typing import ClassVar

import psycopg
import pytest

from bus.errors import GovbusError
from consumers.stores import Store, StoreError, open_store, sql
from consumers.stores.postgres import LOCK_MIGRATE
from tests.unit.test_store_contract import (
    ACCOUNTS,
    ADAPTER,
    PASSWORD,
    TABLES,
    WAIT_S,
    InThread,
    StoreContract,
    account,
    put_accounts,
    stored,
)

pytestmark = pytest.mark.integration


def with_password(url: str) -> str:
    """``url`` with :data:`PASSWORD` for its user (the test server trusts local users and ignores it)."""
    return url.replace("//govbus@", f"//govbus:{PASSWORD}@")


class TestPostgresStore(StoreContract):
    """The contract on PostgreSQL."""

    swap_waits_for_readers = True
    sql_types: ClassVar[dict[str, str]] = {
        "text": "text",
        "int": "bigint",
        "decimal": "numeric",
        "bool": "boolean",
    }

    @pytest.fixture
    def url(self, postgres_database: str) -> str:
        """A fresh database on the session's server, its URL carrying a password."""
        return with_password(postgres_database)

    def wait_until_blocked(self, url: str, sessions: int = 1) -> None:
        """Poll pg_stat_activity until ``sessions`` sessions of the database wait for a lock."""
        deadline = time.monotonic() + WAIT_S
        with psycopg.connect(url, autocommit=True) as connection:
            while time.monotonic() < deadline:
                found = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                ).fetchone()
                if found and found[0] >= sessions:
                    return
                time.sleep(0.01)
        raise AssertionError(f"no session of {url.rsplit('/', 1)[-1]} waited for a lock within {WAIT_S}s")

    def index_names(self, store: Store, table: str) -> set[str]:
        """Indexes from pg_indexes, without the primary key's."""
        with store.snapshot() as view:
            found = view.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ? "
                "AND indexname <> ?",
                (table, f"{table}__pkey"),
            ).fetchall()
        return {row[0] for row in found}

    def column_types(self, store: Store, table: str) -> dict[str, str]:
        """Data types from information_schema.columns."""
        with store.snapshot() as view:
            found = view.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            ).fetchall()
        return {str(name): str(kind) for name, kind in found}


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    """A store where no server listens is a StoreError naming host and database, never the password."""
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/readmodel.*cannot connect") as caught:
        open_store(f"postgresql://app:{PASSWORD}@127.0.0.1:1/readmodel")
    assert PASSWORD not in str(caught.value)
    assert caught.value.transient
    assert isinstance(caught.value, GovbusError)


def test_a_store_error_names_the_database_without_the_password(postgres_database: str) -> None:
    """A failing statement's error shows the redacted URL; the identity shows neither user nor password."""
    store = open_store(with_password(postgres_database))
    try:
        with pytest.raises(StoreError) as caught, store.snapshot() as view:
            view.execute("SELECT * FROM missing_table")
        assert PASSWORD not in str(caught.value)
        assert "govbus:***@" in str(caught.value)
        host_port_db = postgres_database.split("@", 1)[1]
        assert store.identity == f"postgresql://{host_port_db}"
    finally:
        store.close()


def test_a_readers_grants_carry_over_a_swap(postgres_database: str, unique_name: str) -> None:
    """A role allowed to read a live table may read the table that a rebuild swapped in."""
    role = f"reader{unique_name}"
    store = open_store(postgres_database)
    try:
        store.migrate(TABLES)
        with store.transaction() as tx:
            tx.execute(f"CREATE ROLE {role} LOGIN", None)
            tx.execute(f"GRANT SELECT ON accounts TO {role}", None)
        store.shadow(TABLES, ADAPTER)
        put_accounts(store, account("NEW"), shadow=True)
        store.swap(TABLES, ADAPTER)
        assert list(stored(store)) == [("NEW",)]
    finally:
        store.close()
    with psycopg.connect(postgres_database.replace("//govbus@", f"//{role}@")) as reader:
        assert reader.execute("SELECT account_id FROM accounts").fetchall() == [("NEW",)]


def test_a_migration_waits_for_one_in_flight_instead_of_colliding(postgres_database: str) -> None:
    """A migration that starts while another has created the same tables uncommitted waits, then succeeds."""
    first, second = open_store(postgres_database), open_store(postgres_database)
    try:
        with first.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?, 0)", (LOCK_MIGRATE,))
            for table in TABLES:
                for statement in sql.create_table(sql.POSTGRESQL, table, table.name):
                    tx.execute(statement, None)
            waiting = InThread(lambda: second.migrate(TABLES))
            TestPostgresStore().wait_until_blocked(postgres_database)
        waiting.join()
        assert list(second.dump(ACCOUNTS)) == []
    finally:
        first.close()
        second.close()
