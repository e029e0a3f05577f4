"""The projection runtime against real Kafka and SQLite: exactly-once, resume, dead letters."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from bus.errors import PublishError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.decoder import EventDecoder
from consumers.projections.residents import ResidentProjection
from consumers.runtime import ProjectionRunner
from consumers.store import SqliteStore, open_store
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient
from tests.support import wait_for

pytestmark = pytest.mark.integration
TOPIC = "localgov.resident"


@pytest.fixture
def connection(bus_settings: Settings) -> KafkaConnection:
    """A connection whose resident and DLQ topics exist."""
    conn = KafkaConnection(bus_settings.kafka_bootstrap)
    ensure_topics(conn, [bus_settings.topic_prefix + t for t in (TOPIC, "residents.dlq")])
    return conn


def _publish(
    settings: Settings, connection: KafkaConnection, registry: RegistryClient, count: int, seed: int
) -> None:
    publisher = Publisher(
        connection,
        registry,
        load_catalog(),
        agency="localgov",
        source="urn:test",
        topic_prefix=settings.topic_prefix,
    )
    for event in LocalGovSimulator(seed=seed, residents=15).events(count):
        publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
    publisher.close()


def _run_until(runner: ProjectionRunner, applied: int, dead: int = 0) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: runner.stats.applied >= applied and runner.stats.dead_lettered >= dead,
            what=f"{applied} applied and {dead} dead letters",
        )
    finally:
        stop.set()
        thread.join(timeout=30)


def _runner(
    settings: Settings, connection: KafkaConnection, registry: RegistryClient, store: SqliteStore
) -> ProjectionRunner:
    return ProjectionRunner(
        connection,
        ResidentProjection(),
        store,
        EventDecoder(registry, load_catalog()),
        topic_prefix=settings.topic_prefix,
    )


def test_restart_resumes_from_the_stored_position_without_reapplying(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """A second runner on the same store applies only the events published after the first stopped."""
    store = open_store(bus_settings.effective_readmodel_url)
    _publish(bus_settings, connection, registry, 80, seed=5)
    first = _runner(bus_settings, connection, registry, store)
    _run_until(first, applied=80)
    positions = store.positions("residents")
    assert sum(offset + 1 for offset in positions.values()) == 80

    _publish(bus_settings, connection, registry, 40, seed=6)
    second = _runner(bus_settings, connection, registry, store)
    _run_until(second, applied=40)
    assert second.stats.applied == 40
    assert sum(offset + 1 for offset in store.positions("residents").values()) == 120


def test_records_at_or_below_the_stored_position_are_skipped(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """Records Kafka redelivers that the tracking table already holds are not applied again."""
    store = open_store(bus_settings.effective_readmodel_url)
    _publish(bus_settings, connection, registry, 30, seed=8)
    first = _runner(bus_settings, connection, registry, store)
    _run_until(first, applied=30)
    with store.snapshot() as tx:
        rows_before = tx.execute("SELECT * FROM residents ORDER BY resident_id").fetchall()
    # Forget Kafka's view of the group entirely: only the tracking table says where we are.
    consumer = Consumer(connection.consumer(group_id="govbus.residents"))
    for topic, partition in store.positions("residents"):
        consumer.commit(offsets=[TopicPartition(topic, partition, 0)], asynchronous=False)
    consumer.close()
    second = _runner(bus_settings, connection, registry, store)
    _publish(bus_settings, connection, registry, 1, seed=9)
    _run_until(second, applied=1)
    assert second.stats.applied == 1
    with store.snapshot() as tx:
        rows_after = {r["resident_id"]: tuple(r) for r in tx.execute("SELECT * FROM residents").fetchall()}
    assert all(rows_after[r["resident_id"]] == tuple(r) for r in rows_before)


def test_bad_record_goes_to_the_dlq_with_its_cause_and_the_rest_applies(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """A record that is not wire format is dead-lettered with a reason; good records around it still apply."""
    store = open_store(bus_settings.effective_readmodel_url)
    topic = bus_settings.topic_prefix + TOPIC
    _publish(bus_settings, connection, registry, 10, seed=3)
    raw = Producer(connection.producer())
    raw.produce(
        topic,
        key=b"R000000000001",
        value=b"not avro at all",
        headers=[
            ("ce_id", b"x"),
            ("ce_source", b"s"),
            ("ce_type", b"govbus.localgov.ResidentMoved"),
            ("ce_time", b"2026-01-01T00:00:00Z"),
        ],
    )
    raw.flush(10)
    _publish(bus_settings, connection, registry, 10, seed=4)
    runner = _runner(bus_settings, connection, registry, store)
    _run_until(runner, applied=20, dead=1)
    assert (runner.stats.applied, runner.stats.dead_lettered) == (20, 1)

    dlq = Consumer(connection.consumer(group_id=f"dlq-reader-{bus_settings.topic_prefix}"))
    dlq.subscribe([bus_settings.topic_prefix + "residents.dlq"])
    letters = []
    for _ in range(40):
        message = dlq.poll(0.5)
        if message is not None and message.error() is None:
            letters.append(message)
            break
    dlq.close()
    assert len(letters) == 1
    headers = dict(letters[0].headers())
    assert letters[0].value() == b"not avro at all"
    assert headers["govbus_dlq_error"] == b"SerializationError"
    assert b"magic byte" in headers["govbus_dlq_reason"]
    assert headers["govbus_dlq_topic"].decode() == topic
    registrations = sum(
        1
        for seed in (3, 4)
        for e in LocalGovSimulator(seed=seed, residents=15).events(10)
        if e.type.endswith("ResidentRegistered")
    )
    with store.snapshot() as tx:
        assert tx.execute("SELECT count(*) FROM residents").fetchone()[0] == registrations


def test_a_poison_record_is_not_lost_when_its_dlq_topic_does_not_exist(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """With no DLQ topic the runner stops without recording the poison; a later run dead-letters it."""
    connection = KafkaConnection(bus_settings.kafka_bootstrap)
    topic = bus_settings.topic_prefix + TOPIC
    ensure_topics(connection, [topic], partitions=1)
    store = open_store(bus_settings.effective_readmodel_url)
    raw = Producer(connection.producer())
    raw.produce(topic, key=b"R000000000001", value=b"poison")
    raw.flush(10)

    failing = _runner(bus_settings, connection, registry, store)
    with pytest.raises(PublishError, match=r"residents\.dlq"):
        failing.run(threading.Event())
    assert store.positions("residents") == {}

    ensure_topics(connection, [bus_settings.topic_prefix + "residents.dlq"])
    retry = _runner(bus_settings, connection, registry, store)
    _run_until(retry, applied=0, dead=1)
    assert store.positions("residents") == {(topic, 0): 0}
