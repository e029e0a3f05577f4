"""A refused transaction: aborted, the state rebuilt, retried; a failure that persists stops the reaction."""

from __future__ import annotations

import os
import threading
from datetime import date

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from bus.errors import PublishError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.reactions.runtime import MAX_ABORTS_IN_A_ROW
from schemas.registry_client import RegistryClient
from tests.integration.test_reactions import (
    TOPICS,
    adapter,
    death_report,
    deceased_suspensions,
    open_ended_grant,
    publish,
    read_topic,
    wait_until_caught_up,
)
from tests.support import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def connection(bus_settings: Settings) -> KafkaConnection:
    """The reaction's topics, with a dead-letter topic that refuses records over 1,000 bytes."""
    conn = KafkaConnection(bus_settings.kafka_bootstrap)
    prefix = bus_settings.topic_prefix
    ensure_topics(conn, [prefix + "finance-reactions.dlq"], config={"max.message.bytes": "1000"})
    ensure_topics(conn, [prefix + t for t in TOPICS])
    return conn


def produce_poison(connection: KafkaConnection, topic: str) -> tuple[int, int]:
    """Put 5,000 random bytes without CloudEvents headers on ``topic``; return their partition and offset."""
    delivered: list[Message] = []

    def report(error: KafkaError | None, message: Message) -> None:
        assert error is None, error
        delivered.append(message)

    producer = Producer(connection.producer())
    producer.produce(topic, key=b"R-poison", value=os.urandom(5000), on_delivery=report)
    assert producer.flush(10) == 0
    (message,) = delivered
    return int(message.partition() or 0), int(message.offset() or 0)


def test_a_refused_dead_letter_aborts_the_batch_and_repeated_aborts_stop_the_reaction(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """Each abort rebuilds the state and retries; the poison is never recorded; earlier decisions stay."""
    grant = open_ended_grant()
    reaction = adapter("finance-reactions", bus_settings, connection, registry)
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            reaction.run(stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        death = death_report(grant.data["recipient_resident_id"], date(2026, 2, 3))
        publish(bus_settings, connection, registry, [grant, death])
        wait_for(lambda: reaction.stats.emitted == 1, what="the suspension")
        wait_until_caught_up(connection, reaction)
        topic = bus_settings.topic_prefix + "localgov.resident"
        partition, offset = produce_poison(connection, topic)
        thread.join(timeout=120)
        assert not thread.is_alive(), "the reaction kept running"
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(failures) == 1
    assert isinstance(failures[0], PublishError)
    assert "aborted in a row" in str(failures[0])
    assert reaction.stats.aborted == MAX_ABORTS_IN_A_ROW + 1
    assert reaction.stats.dead_lettered == 0
    # Every retry started from a state rebuilt from the log: the grant, the death and the suspension.
    assert reaction.stats.rebuilt == 3 * MAX_ABORTS_IN_A_ROW
    probe = Consumer(connection.consumer(reaction.group_id))
    try:
        (committed,) = probe.committed([TopicPartition(topic, partition)], timeout=10)
    finally:
        probe.close()
    assert committed.offset <= offset
    records = read_topic(connection, registry, bus_settings.topic_prefix + "finance.benefit")
    assert len(deceased_suspensions(records)) == 1
    assert read_topic(connection, registry, bus_settings.topic_prefix + "finance-reactions.dlq") == []
