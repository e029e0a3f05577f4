"""The projection runtime against real Kafka and SQLite: exactly-once, resume, dead letters, bugs."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from bus.errors import PublishError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.decoder import EventDecoder
from consumers.events import DecodedEvent
from consumers.projections.finance import BENEFITS, BenefitsModel
from consumers.projections.localgov import RESIDENTS, ResidentsModel
from consumers.readmodel import ReadModel, WorkingSet
from consumers.runtime import ReadModelRunner, group_id
from consumers.stores import Store, open_store
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator
from producers.simulators.simulation import simulated_events
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


def _run_until(runner: ReadModelRunner, applied: int, dead: int = 0) -> None:
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
    settings: Settings,
    connection: KafkaConnection,
    registry: RegistryClient,
    store: Store,
    model: ReadModel | None = None,
) -> ReadModelRunner:
    return ReadModelRunner(
        connection,
        model or ResidentsModel(),
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
    rows_before = list(store.dump(RESIDENTS))
    # Forget Kafka's view of the group entirely: only the tracking table says where we are.
    consumer = Consumer(connection.consumer(group_id=group_id("residents", store, bus_settings.topic_prefix)))
    for topic, partition in store.positions("residents"):
        consumer.commit(offsets=[TopicPartition(topic, partition, 0)], asynchronous=False)
    consumer.close()
    second = _runner(bus_settings, connection, registry, store)
    _publish(bus_settings, connection, registry, 1, seed=9)
    _run_until(second, applied=1)
    assert second.stats.applied == 1
    rows_after = {r["resident_id"]: r for r in store.dump(RESIDENTS)}
    assert all(rows_after[r["resident_id"]] == r for r in rows_before)


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


def test_a_dead_letter_kafka_refuses_leaves_its_record_unrecorded(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """With the DLQ topic gone the runner stops without recording the poison; a later run dead-letters it."""
    connection = KafkaConnection(bus_settings.kafka_bootstrap)
    topic, dlq = bus_settings.topic_prefix + TOPIC, bus_settings.topic_prefix + "residents.dlq"
    ensure_topics(connection, [topic, dlq], partitions=1)
    store = open_store(bus_settings.effective_readmodel_url)
    failing = _runner(bus_settings, connection, registry, store)
    admin = AdminClient(connection.admin())
    admin.delete_topics([dlq])[dlq].result(30)
    wait_for(lambda: dlq not in admin.list_topics(timeout=10).topics, what="the DLQ topic deleted")
    raw = Producer(connection.producer())
    raw.produce(topic, key=b"R000000000001", value=b"poison")
    raw.flush(10)
    stop = threading.Event()
    # The runner checked its topics at start; skip that check, as if the DLQ vanished while it ran.
    failing._require_topics = lambda _consumer: None  # type: ignore[method-assign]
    with pytest.raises(PublishError, match=r"residents\.dlq"):
        failing.run(stop)
    assert store.positions("residents") == {}

    ensure_topics(connection, [dlq], partitions=1)
    retry = _runner(bus_settings, connection, registry, store)
    _run_until(retry, applied=0, dead=1)
    assert store.positions("residents") == {(topic, 0): 0}


class _BuggyModel(ResidentsModel):
    """The residents model with a bug: a KeyError on every move."""

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        if event.name == "ResidentMoved":
            raise KeyError("no_such_column")
        super().apply(rows, event)


def test_a_projection_bug_stops_the_adapter_and_records_nothing_of_its_batch(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """An unexpected exception in model code is raised, the batch rolls back and nothing is dead-lettered."""
    store = open_store(bus_settings.effective_readmodel_url)
    _publish(bus_settings, connection, registry, 60, seed=11)
    runner = _runner(bus_settings, connection, registry, store, _BuggyModel())
    with pytest.raises(KeyError, match="no_such_column"):
        runner.run(threading.Event())
    assert runner.stats.dead_lettered == 0
    with store.snapshot() as tx:
        assert tx.execute("SELECT count(*) FROM govbus_positions").fetchone()[0] == 0


def test_a_copy_with_a_known_event_id_is_applied_once(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """A BenefitPaid shipped twice with one event id (an outbox re-ship) adds to the total paid once."""
    ensure_topics(
        connection, [bus_settings.topic_prefix + t for t in ("finance.benefit", "benefits.dlq")], partitions=1
    )
    store = open_store(bus_settings.effective_readmodel_url)
    publisher = Publisher(
        connection,
        registry,
        load_catalog(),
        "finance",
        "urn:govbus:agency:finance",
        bus_settings.topic_prefix,
    )
    events = list(simulated_events("finance", 400, 3))
    grant = next(e for e in events if e.type.endswith("BenefitGranted")).data
    paid = next(
        e.data
        for e in events
        if e.type.endswith("BenefitPaid") and e.data["benefit_id"] == grant["benefit_id"]
    )
    publisher.publish("govbus.finance.BenefitGranted", grant)
    publisher.publish("govbus.finance.BenefitPaid", paid, event_id="11111111-1111-4111-8111-111111111111")
    publisher.publish("govbus.finance.BenefitPaid", paid, event_id="11111111-1111-4111-8111-111111111111")
    publisher.close()
    runner = _runner(bus_settings, connection, registry, store, BenefitsModel())
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: runner.stats.applied + runner.stats.duplicates >= 3, what="three events consumed")
    stop.set()
    thread.join(timeout=30)
    assert (runner.stats.applied, runner.stats.duplicates) == (2, 1)
    with store.snapshot() as tx:
        [row] = store.rows(tx).load(BENEFITS, [(grant["benefit_id"],)])
    assert row["total_paid"] == paid["amount"]


def test_a_batch_is_decided_again_when_another_writer_commits_in_between(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """A write between a batch's decision and its commit makes the runner decide again: nothing doubled."""
    store = open_store(bus_settings.effective_readmodel_url)
    _publish(bus_settings, connection, registry, 60, seed=21)
    runner = _runner(bus_settings, connection, registry, store)
    decide = runner._decide
    interfered: list[int] = []

    def decide_then_interfere(*args: object) -> object:
        decided = decide(*args)  # type: ignore[arg-type]
        if not interfered:  # another writer of the adapter (a replay, another process) commits now
            with store.transaction() as tx:
                interfered.append(store.advance_generation(tx, "residents"))
        return decided

    runner._decide = decide_then_interfere  # type: ignore[method-assign]
    _run_until(runner, applied=60)
    assert interfered
    assert runner.stats.applied == 60
    assert sum(offset + 1 for offset in store.positions("residents").values()) == 60
    fresh = open_store(bus_settings.effective_readmodel_url.replace(".sqlite", "-clean.sqlite"))
    clean = _runner(bus_settings, connection, registry, fresh)
    _run_until(clean, applied=60)
    assert list(store.dump(RESIDENTS)) == list(fresh.dump(RESIDENTS))
