"""The outbox relay in-process against real Kafka, a real registry, SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from bus.errors import PublishError, SerializationError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.decoder import EventDecoder
from producers.outbox import Outbox, ensure_schema
from producers.outbox_relay import OutboxRelay
from producers.outbox_store import DbConnection, open_database
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator, SimulatedEvent
from schemas.catalog import load_catalog
from schemas.envelope import format_time
from schemas.registry_client import RegistryClient
from tests.support import wait_for

pytestmark = pytest.mark.integration
TOPIC = "localgov.resident"
SOURCE = "urn:govbus:agency:localgov"
PARTITIONS = 3


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An agency's SQLite database with the outbox tables and nothing else."""
    path = tmp_path / "agency.sqlite"
    connection = sqlite3.connect(path)
    ensure_schema(connection)
    connection.close()
    return f"sqlite:///{path}"


def simulated_events(count: int, seed: int, residents: int = 50) -> list[SimulatedEvent]:
    """Simulated resident events of the types the catalog has, in the order they happened."""
    known = {kind.full_name for kind in load_catalog()}
    return [e for e in LocalGovSimulator(seed=seed, residents=residents).events(count) if e.type in known]


def agency_connection(url: str) -> DbConnection:
    """The agency application's own connection to its database."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"))
    return psycopg.connect(url)


def fill_outbox(url: str, events: list[SimulatedEvent], per_transaction: int = 100) -> None:
    """Add ``events`` the way an agency would: a few per committed business transaction."""
    outbox = Outbox(load_catalog(), "localgov")
    connection = agency_connection(url)
    try:
        outbox.prepare(connection)
        for index, event in enumerate(events, start=1):
            outbox.add(
                connection,
                event.type,
                event.data,
                event_id=event.id,
                time=event.time,
                extensions={"legalbasis": "주민등록법 제10조"},
            )
            if index % per_transaction == 0:
                connection.commit()
        connection.commit()
    finally:
        connection.close()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Message]:
    """Every record now in ``topic``, partition by partition in log order (watermarks say how many)."""
    consumer = Consumer(KafkaConnection(bootstrap).consumer(group_id=f"outbox-check-{time.monotonic_ns()}"))
    try:
        partitions = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
        total = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions)
        consumer.assign(partitions)
        records: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < total and time.monotonic() < deadline:
            records.extend(m for m in consumer.consume(num_messages=1000, timeout=0.5) if m.error() is None)
    finally:
        consumer.close()
    assert len(records) == total, f"read {len(records)} of {total} records from {topic}"
    return sorted(records, key=lambda m: (m.partition(), m.offset()))


def ce_id(message: Message) -> str:
    """The CloudEvents id of a record."""
    return str(dict(message.headers() or [])["ce_id"].decode())


def _relay(
    url: str, settings: Settings, registry: RegistryClient, batch: int = 50, **kafka: str | int
) -> OutboxRelay:
    connection = KafkaConnection(settings.kafka_bootstrap, extra=dict(kafka))
    catalog = load_catalog()
    return OutboxRelay(
        lambda: open_database(url),
        catalog,
        "localgov",
        lambda: Publisher(connection, registry, catalog, "localgov", SOURCE, settings.topic_prefix),
        batch_size=batch,
        poll_interval_s=0.1,
    )


def test_every_row_ships_with_its_stored_identity_in_order_and_is_marked_sent(
    bus_settings: Settings, registry: RegistryClient, sqlite_url: str
) -> None:
    """Each row arrives once with its event id, time, extension, key and exact payload, in per-key order."""
    topic = bus_settings.topic_prefix + TOPIC
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [topic], partitions=PARTITIONS)
    events = simulated_events(300, seed=31)
    fill_outbox(sqlite_url, events)

    stats = _relay(sqlite_url, bus_settings, registry).run(threading.Event(), once=True)

    assert stats.shipped == len(events)
    database = open_database(sqlite_url)
    assert (database.counts().pending, database.counts().sent) == (0, len(events))
    database.close()
    records = read_topic(bus_settings.kafka_bootstrap, topic)
    decoder = EventDecoder(registry, load_catalog())
    by_id = {event.id: event for event in events}
    assert sorted(ce_id(m) for m in records) == sorted(by_id)
    for message in records:
        decoded = decoder.decode(message)
        headers = dict(message.headers() or [])
        event = by_id[decoded.id]
        assert decoded.data == event.data
        assert message.key() == event.data["resident_id"].encode()
        assert headers["ce_time"].decode() == format_time(event.time)
        assert headers["ce_source"].decode() == SOURCE
        assert headers["ce_legalbasis"].decode() == "주민등록법 제10조"
    arrived: dict[bytes, list[str]] = {}
    for message in records:
        arrived.setdefault(message.key() or b"", []).append(ce_id(message))
    for key, ids in arrived.items():
        assert ids == [e.id for e in events if e.data["resident_id"].encode() == key]


def test_undelivered_rows_stay_pending_and_ship_on_the_next_run(
    bus_settings: Settings, registry: RegistryClient, sqlite_url: str
) -> None:
    """When Kafka refuses every record (no such topic) nothing is marked; once it accepts, all rows ship."""
    topic = bus_settings.topic_prefix + TOPIC
    events = simulated_events(40, seed=32)
    fill_outbox(sqlite_url, events)
    relay = _relay(sqlite_url, bus_settings, registry, **{"message.timeout.ms": 2000})

    with pytest.raises(PublishError):
        relay.run(threading.Event(), once=True)
    database = open_database(sqlite_url)
    assert database.counts().sent == 0

    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [topic], partitions=PARTITIONS)
    assert relay.run(threading.Event(), once=True).shipped == len(events)
    assert database.counts().sent == len(events)
    database.close()
    ids = [ce_id(m) for m in read_topic(bus_settings.kafka_bootstrap, topic)]
    assert sorted(ids) == sorted(e.id for e in events)


def test_a_row_that_cannot_be_published_stops_the_relay_after_the_rows_before_it(
    bus_settings: Settings, registry: RegistryClient, sqlite_url: str
) -> None:
    """A corrupt payload raises SerializationError; earlier rows are shipped and marked, later ones wait."""
    topic = bus_settings.topic_prefix + TOPIC
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [topic], partitions=PARTITIONS)
    events = simulated_events(30, seed=33)
    fill_outbox(sqlite_url, events)
    connection = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    connection.execute("UPDATE govbus_outbox SET payload = '{}' WHERE seq = 12")
    connection.commit()
    connection.close()

    with pytest.raises(SerializationError, match="seq=12"):
        _relay(sqlite_url, bus_settings, registry, batch=10).run(threading.Event(), once=True)

    database = open_database(sqlite_url)
    assert [row.seq for row in database.pending(100)] == list(range(12, len(events) + 1))
    database.close()
    ids = [ce_id(m) for m in read_topic(bus_settings.kafka_bootstrap, topic)]
    assert sorted(ids) == sorted(e.id for e in events[:11])


def test_a_standby_relay_ships_only_once_the_active_one_is_gone(
    bus_settings: Settings, registry: RegistryClient, postgres_database: str
) -> None:
    """On PostgreSQL a second relay waits while another holds the relay lock, then drains the outbox."""
    topic = bus_settings.topic_prefix + TOPIC
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [topic], partitions=PARTITIONS)
    events = simulated_events(120, seed=34)
    fill_outbox(postgres_database, events)
    active = open_database(postgres_database)
    assert active.try_lock()
    standby = _relay(postgres_database, bus_settings, registry)
    thread = threading.Thread(target=standby.run, args=(threading.Event(),), kwargs={"once": True})
    thread.start()
    try:
        wait_for(lambda: standby.stats.state == "standby", what="the relay to wait as a standby")
        time.sleep(0.3)
        assert active.counts().sent == 0
    finally:
        active.close()
    thread.join(timeout=60)
    assert standby.stats.shipped == len(events)
    checker = open_database(postgres_database)
    assert checker.counts().sent == len(events)
    checker.close()
