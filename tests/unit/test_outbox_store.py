"""The outbox table contract (add, read back, mark sent, relay lock), run here on SQLite.

``OutboxStoreContract`` holds the behaviour every outbox database must have; the PostgreSQL
subclass lives in tests/integration/test_outbox_postgres.py and runs the same tests on a real server.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bus.errors import ConfigurationError, PublishError, SchemaNotFoundError, SerializationError
from producers.outbox import Outbox, ensure_schema, schema_fingerprint
from producers.outbox_relay import PayloadReader
from producers.outbox_store import (
    DbConnection,
    OutboxDatabase,
    OutboxDatabaseError,
    open_database,
    redact,
    writer_for,
)
from schemas.catalog import CATALOG_DIR, Catalog, load_catalog

BENEFIT = "govbus.finance.BenefitPaid"
MOVED = "govbus.localgov.ResidentMoved"


def _field(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "classification": "internal", "doc": f"The {name}.", **extra}


def write_test_catalog(root: Path, *, with_currency: bool = False) -> Catalog:
    """A catalog with a finance event rich in logical types (and a localgov one) under ``root``."""
    fields = [
        _field("benefit_id", "string"),
        _field("amount", {"type": "bytes", "logicalType": "decimal", "precision": 14, "scale": 2}),
        _field("paid_at", {"type": "long", "logicalType": "timestamp-micros"}),
        _field("paid_on", {"type": "int", "logicalType": "date"}),
        _field("memo", ["null", "string"], default=None),
    ]
    if with_currency:
        fields.append(_field("currency", "string", default="KRW"))
    schema = {
        "type": "record",
        "name": "BenefitPaid",
        "namespace": "govbus.finance",
        "doc": "A benefit payment.",
        "key": "benefit_id",
        "fields": fields,
    }
    (root / "finance.benefit").mkdir(parents=True, exist_ok=True)
    (root / "finance.benefit" / "BenefitPaid.avsc").write_text(json.dumps(schema), encoding="utf-8")
    (root / "localgov.resident").mkdir(exist_ok=True)
    shutil.copy(CATALOG_DIR / "localgov.resident" / "ResidentMoved.avsc", root / "localgov.resident")
    return load_catalog(root)


def benefit(number: int, **changes: Any) -> dict[str, Any]:
    """A BenefitPaid payload whose values only round-trip if dates, decimals and unions are kept exactly."""
    return {
        "benefit_id": f"B{number:05d}",
        "amount": Decimal("1234567.89") + number,
        "paid_at": datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        "paid_on": date(2026, 3, 1),
        "memo": "기초연금 3월분",
        **changes,
    }


class OutboxStoreContract:
    """Behaviour every outbox database must have; subclasses provide ``database_url`` and ``connect``."""

    @pytest.fixture
    def database_url(self) -> str:
        """A URL of an empty database."""
        raise NotImplementedError

    def connect(self, url: str) -> DbConnection:
        """An agency-style connection (not autocommit) to ``url``."""
        raise NotImplementedError

    @pytest.fixture
    def catalog(self, tmp_path: Path) -> Catalog:
        """The test catalog."""
        return write_test_catalog(tmp_path / "catalog")

    @pytest.fixture
    def app(self, database_url: str) -> Iterator[DbConnection]:
        """The agency's own connection, with the outbox tables created."""
        connection = self.connect(database_url)
        ensure_schema(connection)
        connection.commit()
        yield connection
        connection.close()

    @pytest.fixture
    def relay_db(self, database_url: str, app: DbConnection) -> Iterator[OutboxDatabase]:
        """The relay's view of the same database."""
        database = open_database(database_url)
        yield database
        database.close()

    def test_ensure_schema_is_idempotent(self, app: DbConnection) -> None:
        """Creating the outbox tables again changes nothing and raises nothing."""
        ensure_schema(app)
        ensure_schema(app)
        app.commit()
        cursor = app.cursor()
        cursor.execute("SELECT count(*) FROM govbus_outbox")
        assert cursor.fetchone() == (0,)

    def test_a_row_exists_only_once_the_callers_transaction_commits(
        self, app: DbConnection, relay_db: OutboxDatabase, catalog: Catalog
    ) -> None:
        """The relay sees nothing of an uncommitted or rolled-back add, and the row once it commits."""
        outbox = Outbox(catalog, "finance")
        outbox.add(app, BENEFIT, benefit(1))
        assert relay_db.pending(10) == []
        app.rollback()
        assert relay_db.pending(10) == []
        event_id = outbox.add(app, BENEFIT, benefit(2))
        app.commit()
        assert [row.event_id for row in relay_db.pending(10)] == [event_id]

    def test_payload_time_and_extensions_round_trip_exactly(
        self, app: DbConnection, relay_db: OutboxDatabase, catalog: Catalog
    ) -> None:
        """Decimals, timestamps, dates, unions, Korean text, the time and extensions come back equal."""
        outbox = Outbox(catalog, "finance")
        moment = datetime(2026, 3, 1, 18, 30, 15, 123456, tzinfo=timezone(timedelta(hours=9)))
        extensions = {"legalbasis": "기초연금법 제3조", "correlationid": "c-1"}
        payload = benefit(7)
        event_id = outbox.add(app, BENEFIT, payload, event_id="e-7", time=moment, extensions=extensions)
        app.commit()
        [row] = relay_db.pending(10)
        assert (event_id, row.event_id, row.event_type) == ("e-7", "e-7", BENEFIT)
        assert row.occurred_at == moment
        assert row.extensions == extensions
        assert PayloadReader(catalog, "finance").read(row, relay_db) == payload

    def test_a_payload_that_does_not_fit_is_refused_before_anything_is_stored(
        self, app: DbConnection, relay_db: OutboxDatabase, catalog: Catalog
    ) -> None:
        """A wrong type, missing key, bad extension or naive time is refused and nothing is stored."""
        outbox = Outbox(catalog, "finance")
        with pytest.raises(SerializationError, match="does not fit"):
            outbox.add(app, BENEFIT, benefit(1, amount="a lot"))
        with pytest.raises(SerializationError, match="key field"):
            outbox.add(app, BENEFIT, benefit(1, benefit_id=""))
        with pytest.raises(SerializationError, match="extension"):
            outbox.add(app, BENEFIT, benefit(1), extensions={"Legal-Basis": "x"})
        with pytest.raises(SerializationError, match="time zone"):
            outbox.add(app, BENEFIT, benefit(1), time=datetime(2026, 1, 1))
        app.commit()
        assert relay_db.counts().pending == 0

    def test_another_agencys_event_type_is_refused(self, app: DbConnection, catalog: Catalog) -> None:
        """An agency may only put its own event types in its outbox."""
        with pytest.raises(PublishError, match="may not publish"):
            Outbox(catalog, "finance").add(app, MOVED, {"resident_id": "R1"})

    def test_an_event_id_already_in_the_outbox_is_refused(self, app: DbConnection, catalog: Catalog) -> None:
        """Adding a second event under a stored event id raises PublishError naming the id."""
        outbox = Outbox(catalog, "finance")
        outbox.add(app, BENEFIT, benefit(1), event_id="same")
        app.commit()
        with pytest.raises(PublishError, match="same"):
            outbox.add(app, BENEFIT, benefit(2), event_id="same")
        app.rollback()

    def test_pending_rows_come_in_seq_order_and_marked_rows_leave(
        self, app: DbConnection, relay_db: OutboxDatabase, catalog: Catalog
    ) -> None:
        """Unsent rows come lowest seq first, up to the limit; marking some sent leaves the rest pending."""
        outbox = Outbox(catalog, "finance")
        ids = [outbox.add(app, BENEFIT, benefit(n)) for n in range(6)]
        app.commit()
        first = relay_db.pending(4)
        assert [row.event_id for row in first] == ids[:4]
        assert [row.seq for row in first] == sorted(row.seq for row in first)
        relay_db.mark_sent([first[0].seq, first[2].seq])
        assert [row.event_id for row in relay_db.pending(10)] == [ids[1], ids[3], ids[4], ids[5]]
        counts = relay_db.counts()
        assert (counts.pending, counts.sent) == (4, 2)

    def test_only_one_relay_holds_the_outbox_at_a_time(self, database_url: str, app: DbConnection) -> None:
        """A second relay cannot take the relay lock until the first one's database is closed."""
        first, second = open_database(database_url), open_database(database_url)
        try:
            assert first.try_lock()
            assert not second.try_lock()
            first.close()
            assert second.try_lock()
        finally:
            second.close()

    def test_rows_written_with_an_older_schema_are_read_as_the_current_one(
        self, app: DbConnection, relay_db: OutboxDatabase, catalog: Catalog, tmp_path: Path
    ) -> None:
        """A relay whose catalog added a field with a default reads older rows through their stored schema."""
        Outbox(catalog, "finance").add(app, BENEFIT, benefit(3))
        app.commit()
        newer = write_test_catalog(tmp_path / "newer", with_currency=True)
        [row] = relay_db.pending(1)
        assert row.schema_fingerprint == schema_fingerprint(catalog.get(BENEFIT).parsed)
        assert relay_db.writer_schema(row.schema_fingerprint) == catalog.get(BENEFIT).schema_text
        assert PayloadReader(newer, "finance").read(row, relay_db) == {**benefit(3), "currency": "KRW"}


class TestSqliteOutboxStore(OutboxStoreContract):
    """The contract on SQLite."""

    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        """An empty SQLite file."""
        path = tmp_path / "agency.sqlite"
        sqlite3.connect(path).close()
        return f"sqlite:///{path}"

    def connect(self, url: str) -> DbConnection:
        """A default (implicit-transaction) sqlite3 connection."""
        return sqlite3.connect(url.removeprefix("sqlite:///"))


def test_a_missing_sqlite_file_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    """Opening a SQLite outbox that does not exist fails with its path and creates no file."""
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(OutboxDatabaseError, match="does not exist"):
        open_database(f"sqlite:///{missing}")
    assert not missing.exists()


def test_an_unsupported_url_is_a_configuration_error() -> None:
    """A URL that is neither sqlite:/// nor postgresql:// is refused without showing its password."""
    with pytest.raises(ConfigurationError, match="expected sqlite") as caught:
        open_database("mysql://app:secret@db/agency")
    assert "secret" not in str(caught.value)


def test_an_unsupported_connection_type_is_a_configuration_error() -> None:
    """Only sqlite3 and psycopg 3 connections can hold an outbox."""
    with pytest.raises(ConfigurationError, match="psycopg 3"):
        writer_for(object())  # type: ignore[arg-type]  # the wrong type is the point


def test_redact_hides_only_the_password() -> None:
    """The password of a database URL is replaced; user, host, port and database stay."""
    assert redact("postgresql://app:pw@db.local:5433/agency") == "postgresql://app:***@db.local:5433/agency"
    assert redact("postgresql://db.local/agency") == "postgresql://db.local/agency"


@pytest.fixture
def sqlite_outbox(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, OutboxDatabase, Catalog]]:
    """An agency SQLite connection, the relay's view of the same file, and the test catalog."""
    path = tmp_path / "agency.sqlite"
    connection = sqlite3.connect(path)
    ensure_schema(connection)
    database = open_database(f"sqlite:///{path}")
    yield connection, database, write_test_catalog(tmp_path / "catalog")
    database.close()
    connection.close()


def test_a_row_whose_writer_schema_is_unknown_cannot_be_read(
    sqlite_outbox: tuple[sqlite3.Connection, OutboxDatabase, Catalog],
) -> None:
    """A row whose fingerprint is neither the catalog's nor stored names its seq and the fingerprint."""
    connection, database, catalog = sqlite_outbox
    Outbox(catalog, "finance").add(connection, BENEFIT, benefit(1))
    connection.execute("UPDATE govbus_outbox SET schema_fingerprint = 'feedfacefeedface'")
    connection.commit()
    [row] = database.pending(1)
    with pytest.raises(SchemaNotFoundError, match="seq=1: writer schema feedfacefeedface"):
        PayloadReader(catalog, "finance").read(row, database)


def test_a_row_of_another_agency_is_not_read(
    sqlite_outbox: tuple[sqlite3.Connection, OutboxDatabase, Catalog],
) -> None:
    """A relay for one agency refuses a row holding another agency's event type."""
    connection, database, catalog = sqlite_outbox
    Outbox(catalog, "finance").add(connection, BENEFIT, benefit(1))
    connection.commit()
    [row] = database.pending(1)
    with pytest.raises(SchemaNotFoundError, match="not an event type of 'localgov'"):
        PayloadReader(catalog, "localgov").read(row, database)


def test_a_payload_that_no_longer_fits_is_a_serialization_error(
    sqlite_outbox: tuple[sqlite3.Connection, OutboxDatabase, Catalog],
) -> None:
    """A stored payload edited into something its schema cannot read raises SerializationError."""
    connection, database, catalog = sqlite_outbox
    Outbox(catalog, "finance").add(connection, BENEFIT, benefit(1))
    connection.execute("""UPDATE govbus_outbox SET payload = '{"benefit_id": 5}'""")
    connection.commit()
    [row] = database.pending(1)
    with pytest.raises(SerializationError, match="seq=1"):
        PayloadReader(catalog, "finance").read(row, database)
