"""The outbox contract on a real PostgreSQL server, plus the per-aggregate lock only PostgreSQL needs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bus.errors import GovbusError
from producers.outbox import Outbox
from producers.outbox_store import DbConnection, OutboxDatabaseError, open_database
from tests.unit.test_outbox_store import BENEFIT, OutboxStoreContract, benefit, write_test_catalog

pytestmark = pytest.mark.integration


class TestPostgresOutboxStore(OutboxStoreContract):
    """The contract on PostgreSQL."""

    @pytest.fixture
    def database_url(self, postgres_database: str) -> str:
        """A fresh database on the session's server."""
        return postgres_database

    def connect(self, url: str) -> DbConnection:
        """A default (not autocommit) psycopg connection."""
        return psycopg.connect(url)


def _add_in_thread(url: str, outbox: Outbox, payload: dict[str, Any], result: list[int]) -> threading.Thread:
    def add_and_commit() -> None:
        with psycopg.connect(url) as connection:
            event_id = outbox.add(connection, BENEFIT, payload)
            connection.commit()
            found = connection.execute("SELECT seq FROM govbus_outbox WHERE event_id = %s", (event_id,))
            result.append(int(found.fetchone()[0]))

    thread = threading.Thread(target=add_and_commit, daemon=True)
    thread.start()
    return thread


def test_a_second_writer_of_the_same_aggregate_waits_so_seq_order_is_commit_order(
    postgres_database: str, tmp_path: Path
) -> None:
    """A writer of an aggregate with an uncommitted event waits for that commit and gets a later seq."""
    outbox = Outbox(write_test_catalog(tmp_path), "finance")
    with psycopg.connect(postgres_database) as first:
        outbox.prepare(first)
        outbox.add(first, BENEFIT, benefit(1))
        first_seq = int(first.execute("SELECT max(seq) FROM govbus_outbox").fetchone()[0])
        same_key: list[int] = []
        other_key: list[int] = []
        waiting = _add_in_thread(postgres_database, outbox, benefit(1, memo="second"), same_key)
        free = _add_in_thread(postgres_database, outbox, benefit(2), other_key)
        free.join(timeout=10)
        time.sleep(0.3)
        assert other_key, "an event of another aggregate must not wait"
        assert waiting.is_alive(), "an event of the same aggregate must wait for the first commit"
        first.commit()
    waiting.join(timeout=10)
    assert same_key
    assert same_key[0] > first_seq


def test_an_unreachable_server_is_a_clear_error(postgres_url: str) -> None:
    """Opening an outbox where no server listens names the URL (without its password) in the error."""
    with pytest.raises(OutboxDatabaseError, match=r"127\.0\.0\.1:1/agency") as caught:
        open_database("postgresql://app:secret@127.0.0.1:1/agency")
    assert "secret" not in str(caught.value)
    assert isinstance(caught.value, GovbusError)


def test_a_relay_needs_only_select_and_update_once_the_tables_exist(
    postgres_database: str, unique_name: str, tmp_path: Path
) -> None:
    """A database user with SELECT/UPDATE on the outbox and SELECT on its schemas can run the relay."""
    outbox = Outbox(write_test_catalog(tmp_path), "finance")
    role = f"relay{unique_name}"
    with psycopg.connect(postgres_database) as owner:
        outbox.prepare(owner)
        outbox.add(owner, BENEFIT, benefit(1))
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(f"GRANT SELECT, UPDATE ON govbus_outbox TO {role}")
        owner.execute(f"GRANT SELECT ON govbus_outbox_schema TO {role}")
        owner.commit()
    database = open_database(postgres_database.replace("//govbus@", f"//{role}@"))
    try:
        assert database.try_lock()
        [row] = database.pending(10)
        database.mark_sent([row.seq])
        assert database.counts().sent == 1
    finally:
        database.close()
