"""The projection runtime: consume, decode, apply and record the position in one transaction.

Exactly-once into the read model: the view rows and the tracking row of a batch commit together,
the consumer resumes from the stored positions (not from Kafka's committed offsets), and records at
or below a stored position are skipped as already applied. Offsets are also committed to Kafka
after the database commit, only so that standard tools show the group's lag.

A record that cannot be decoded or applied is sent to the adapter's DLQ with its cause, and its
position is recorded, so one bad record never blocks the partition and nothing is silently lost.

A runner that cannot start says so instead of retrying forever: when the cluster does not answer
within ``connect_timeout_s`` it raises KafkaUnavailableError, and when one of its topics (or its DLQ)
does not exist it raises ConfigurationError naming them. Once running, it rides out broker outages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from bus.errors import ConfigurationError, ProjectionError, SchemaNotFoundError, SerializationError
from bus.kafka_config import KafkaConnection, missing_topics
from consumers.decoder import EventDecoder
from consumers.dlq import DeadLetters
from consumers.events import DecodedEvent
from consumers.store import SqliteStore, Transaction, record_position

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 10.0
BAD_INPUT = (SerializationError, SchemaNotFoundError, ProjectionError, KeyError, ValueError, TypeError)


class Projection(Protocol):
    """A read model: its adapter name, its topics, its tables and how one event changes them."""

    name: str
    topics: tuple[str, ...]

    def migrate(self, tx: Transaction) -> None:
        """Create or upgrade the tables."""
        ...

    def handle(self, tx: Transaction, event: DecodedEvent) -> None:
        """Apply one event inside ``tx``."""
        ...


@dataclass
class RunStats:
    """Counters a runner exposes for progress and tests."""

    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    batches: int = 0
    positions: dict[tuple[str, int], int] = field(default_factory=dict)


class ProjectionRunner:
    """Keeps one projection up to date from Kafka."""

    def __init__(
        self,
        connection: KafkaConnection,
        projection: Projection,
        store: SqliteStore,
        decoder: EventDecoder,
        batch_size: int = 500,
        topic_prefix: str = "",
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.projection = projection
        self._connection = connection
        self._store = store
        self._decoder = decoder
        self._batch_size = batch_size
        self._connect_timeout_s = connect_timeout_s
        self._topics = [topic_prefix + topic for topic in projection.topics]
        self._dead_letters = DeadLetters(connection, projection.name, topic_prefix)
        self.stats = RunStats()
        with store.transaction() as tx:
            projection.migrate(tx)

    def run(self, stop: threading.Event, on_batch: Callable[[RunStats], None] | None = None) -> RunStats:
        """Consume until ``stop`` is set; returns the counters.

        Raises KafkaUnavailableError or ConfigurationError at once when it cannot start (see above).
        """
        consumer = Consumer(self._connection.consumer(group_id=f"govbus.{self.projection.name}"))
        try:
            self._require_topics(consumer)
        except BaseException:
            consumer.close()
            raise
        consumer.subscribe(self._topics, on_assign=self._on_assign)
        log.info("projection.started", adapter=self.projection.name, topics=self._topics)
        try:
            while not stop.is_set():
                messages = consumer.consume(num_messages=self._batch_size, timeout=0.5)
                records = [m for m in messages if not _is_partition_eof(m)]
                errors = [m.error() for m in records if m.error() is not None]
                for error in errors:
                    log.warning("projection.consume.error", adapter=self.projection.name, error=str(error))
                records = [m for m in records if m.error() is None]
                if records:
                    offsets = self._apply_batch(records)
                    consumer.commit(offsets=offsets, asynchronous=True)
                    if on_batch is not None:
                        on_batch(self.stats)
        finally:
            consumer.close()
            log.info("projection.stopped", adapter=self.projection.name, applied=self.stats.applied)
        return self.stats

    def _require_topics(self, consumer: Consumer) -> None:
        """The connect deadline: the cluster answers within it and has every topic this runner needs."""
        missing = missing_topics(
            consumer,
            [*self._topics, self._dead_letters.topic],
            self._connection.bootstrap_servers,
            self._connect_timeout_s,
        )
        if missing:
            raise ConfigurationError(
                f"the {self.projection.name} consumer needs topics that do not exist on Kafka at "
                f"{self._connection.bootstrap_servers}: {', '.join(missing)}; "
                "create the catalog's topics with `govbus topics create`"
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._store.positions(self.projection.name)
        for tp in partitions:
            last = stored.get((tp.topic, tp.partition))
            tp.offset = OFFSET_BEGINNING if last is None else last + 1
        consumer.assign(partitions)
        log.info(
            "projection.assigned",
            adapter=self.projection.name,
            partitions=[f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions],
        )

    def _apply_batch(self, records: list[Message]) -> list[TopicPartition]:
        adapter = self.projection.name
        highest: dict[tuple[str, int], int] = {}
        with self._store.transaction() as tx:
            stored = self._stored_positions(tx)
            for message in records:
                place = (str(message.topic()), int(message.partition() or 0))
                offset = int(message.offset() or 0)
                if offset <= stored.get(place, -1):
                    self.stats.skipped += 1
                    continue
                self._apply_one(tx, message)
                stored[place] = offset
                highest[place] = offset
            self._dead_letters.flush()
            for (topic, partition), offset in highest.items():
                record_position(tx, adapter, topic, partition, offset)
        self.stats.batches += 1
        self.stats.positions.update(highest)
        return [
            TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in highest.items()
        ]

    def _apply_one(self, tx: Any, message: Message) -> None:
        tx.execute("SAVEPOINT event")
        try:
            event = self._decoder.decode(message)
            self.projection.handle(tx, event)
        except BAD_INPUT as exc:
            tx.execute("ROLLBACK TO SAVEPOINT event")
            log.warning(
                "projection.dead_letter",
                adapter=self.projection.name,
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                error=type(exc).__name__,
                reason=str(exc),
            )
            self._dead_letters.send(message, exc)
            self.stats.dead_lettered += 1
        else:
            self.stats.applied += 1
        tx.execute("RELEASE SAVEPOINT event")

    def _stored_positions(self, tx: Any) -> dict[tuple[str, int], int]:
        rows = tx.execute(
            'SELECT topic, partition, "offset" FROM tracking WHERE adapter = ?', (self.projection.name,)
        )
        return {(row[0], row[1]): row[2] for row in rows}


def _is_partition_eof(message: Message) -> bool:
    error = message.error()
    return error is not None and error.code() == KafkaError._PARTITION_EOF
