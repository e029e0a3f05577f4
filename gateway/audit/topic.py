"""The audit topic: its name and settings, creating it, and reading it (read_committed) in ranges.

The topic is ``{GOVBUS_TOPIC_PREFIX}govbus.audit``, kept forever (``cleanup.policy=delete`` with
``retention.ms`` and ``retention.bytes`` -1: never compacted, never expired), with one partition (so every
writer's records are in one total order) and a replication factor of up to 3, as many as the cluster has
brokers. The audit log creates it when it starts, as the schema registry creates its own topic; it is not
in ``govbus topics create``'s list because its settings are not the catalog topics' settings.

Records are read with ``isolation.level=read_committed``: the writer is not transactional, so that changes
nothing today, but a transaction aborted by anyone writing to the topic would never show up. A Kafka record
holds one audit record or a block of them (:func:`~gateway.audit.chain.parse_records`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from bus.errors import ConfigurationError, KafkaUnavailableError
from bus.kafka_config import KafkaConnection
from bus.topics import ensure_topics
from gateway.audit.chain import parse_records

AUDIT_TOPIC = "govbus.audit"
TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
MAX_REPLICATION = 3
READ_TIMEOUT_S = 10.0
"""How long a read may go without progress before Kafka counts as not answering."""


def audit_topic(prefix: str = "") -> str:
    """The audit topic's name under a topic prefix."""
    return prefix + AUDIT_TOPIC


def ensure_audit_topic(connection: KafkaConnection, topic: str, timeout_s: float = 30.0) -> bool:
    """Create ``topic`` with the audit settings when it does not exist; whether it was created.

    ConfigurationError when Kafka does not answer or refuses.
    """
    try:
        brokers = len(AdminClient(connection.admin()).list_topics(timeout=min(timeout_s, 5.0)).brokers)
    except KafkaException as exc:
        raise ConfigurationError(f"Kafka at {connection.bootstrap_servers} does not answer: {exc}") from exc
    created = ensure_topics(
        connection,
        [topic],
        partitions=1,
        replication_factor=max(1, min(MAX_REPLICATION, brokers)),
        config=TOPIC_CONFIG,
        timeout_s=timeout_s,
    )
    return bool(created)


@dataclass(frozen=True)
class Tail:
    """Where a writer's chain ends: its last committed record."""

    seq: int
    hash: str
    partition: int
    offset: int


def reader(connection: KafkaConnection, **overrides: str | int | bool) -> Consumer:
    """A read_committed consumer that joins no group's work (partitions are assigned, nothing committed)."""
    config = connection.consumer(
        f"govbus-audit-reader-{uuid.uuid4().hex[:12]}",
        **{"enable.partition.eof": True, "fetch.wait.max.ms": 50, **overrides},
    )
    return Consumer(config)


def partitions(consumer: Consumer, topic: str, timeout_s: float = READ_TIMEOUT_S) -> list[int]:
    """The partitions of ``topic``; KafkaUnavailableError when Kafka does not answer, ConfigurationError
    when the topic does not exist."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(f"Kafka does not answer within {timeout_s:g}s: {exc}", "") from exc
    found = metadata.topics.get(topic)
    if (
        found is None
        or (found.error is not None and found.error.code() != KafkaError.NO_ERROR)
        or not (found.partitions)
    ):
        raise ConfigurationError(f"there is no audit topic {topic!r}")
    return sorted(found.partitions)


def read_range(
    consumer: Consumer,
    topic: str,
    partition: int,
    start: int,
    stop: int | None,
    idle_s: float = READ_TIMEOUT_S,
) -> Iterator[Message]:
    """The committed records of one partition from offset ``start`` until ``stop`` (excluded) or its end.

    KafkaUnavailableError when no record and no end arrives for ``idle_s``.
    """
    if stop is not None and start >= stop:
        return
    consumer.assign([TopicPartition(topic, partition, start)])
    last_progress = time.monotonic()
    try:
        while True:
            message = consumer.poll(0.2)
            if message is None:
                if time.monotonic() - last_progress > idle_s:
                    raise KafkaUnavailableError(
                        f"reading {topic}[{partition}] made no progress for {idle_s:g}s", ""
                    )
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                if error.fatal() or not error.retriable():
                    raise KafkaUnavailableError(f"reading {topic}[{partition}]: {error.str()}", "")
                continue
            last_progress = time.monotonic()
            offset = message.offset()
            if stop is not None and offset is not None and offset >= stop:
                return
            yield message
            if stop is not None and offset is not None and offset + 1 >= stop:
                return
    finally:
        consumer.unassign()


def read_all(consumer: Consumer, topic: str, idle_s: float = READ_TIMEOUT_S) -> Iterator[Message]:
    """Every committed record of ``topic``, partition after partition, from the beginning to the end."""
    for partition in partitions(consumer, topic, idle_s):
        yield from read_range(consumer, topic, partition, 0, None, idle_s)


def find_tail(consumer: Consumer, topic: str, writer: str, idle_s: float = READ_TIMEOUT_S) -> Tail | None:
    """The last committed record of ``writer`` in ``topic`` (None when it has none).

    Reads backwards in growing windows from each partition's end, so a writer that wrote recently is
    found after reading a few records, not the whole topic.
    """
    key = writer.encode()
    best: Tail | None = None
    for partition in partitions(consumer, topic, idle_s):
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=idle_s, cached=False
            )
        except KafkaException as exc:
            raise KafkaUnavailableError(f"Kafka does not answer within {idle_s:g}s: {exc}", "") from exc
        stop, window = high, 1000
        while stop > low:
            start = max(low, stop - window)
            found = _last_of(consumer, topic, partition, start, stop, key, idle_s)
            if found is not None:
                if best is None or found.seq > best.seq:
                    best = found
                break
            stop, window = start, window * 4
    return best


def _last_of(
    consumer: Consumer, topic: str, partition: int, start: int, stop: int, key: bytes, idle_s: float
) -> Tail | None:
    last: Tail | None = None
    for message in read_range(consumer, topic, partition, start, stop, idle_s):
        if message.key() != key:
            continue
        try:
            record = parse_records(message.value())[-1]
        except ValueError:
            continue  # `govbus audit verify` reports it; the writer continues after its last good record
        last = Tail(record["seq"], record["hash"], partition, message.offset() or 0)
    return last
