"""The registry's storage: one compacted, single-partition Kafka topic (``_schemas`` by default).

Every instance follows the topic from its beginning with a ``read_committed`` consumer and applies
each record to its :class:`~schemas.registry.state.RegistryState`; that is how a restarted instance
gets its state back and how two instances on one cluster agree.

Writes are Kafka transactions of one transactional id shared by every instance of the topic
(``govbus-registry-{topic}``). A writer first catches up with everything committed (``sync``), then
decides (a new id, a new version) and commits. If another instance initialised the same
transactional id in between, Kafka fences this one and the commit fails; the writer then starts a
new producer, catches up again and decides again. So two instances never hand out the same id or
version, without a leader election.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from bus.errors import RegistryError
from bus.kafka_config import KafkaConnection
from bus.topics import ensure_topics
from schemas.registry.state import Record, encode_json

log = structlog.get_logger(__name__)
_PASSING_METADATA_ERRORS = frozenset(
    {KafkaError._UNKNOWN_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION}
)

DEFAULT_TOPIC = "_schemas"
SYNC_TIMEOUT_S = 30.0
POLL_S = 0.1
Apply = Callable[[dict[str, Any], dict[str, Any] | None], None]


class FencedError(Exception):
    """Another instance initialised the registry's transactional id after this one: decide again."""


class KafkaRegistryLog:
    """Follows and appends to the registry topic."""

    def __init__(self, connection: KafkaConnection, topic: str = DEFAULT_TOPIC) -> None:
        self.topic = topic
        self._connection = connection
        self._partition = TopicPartition(topic, 0)
        self._consumer: Consumer | None = None
        # Watermarks are asked of a second, idle consumer: the following one is always inside poll().
        self._probe: Consumer | None = None
        self._producer: Producer | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._progress = threading.Condition()
        self._next_offset = 0
        self._apply: Apply | None = None

    def start(self, apply: Apply) -> None:
        """Create the topic if needed, replay it into ``apply`` and keep following it."""
        self._apply = apply
        ensure_topics(
            self._connection,
            [self.topic],
            partitions=1,
            config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
        )
        config = self._connection.consumer(
            group_id=f"govbus-registry-reader-{self.topic}",
            **{"enable.partition.eof": True, "fetch.wait.max.ms": 50},
        )
        consumer = Consumer(config)
        consumer.assign([TopicPartition(self.topic, 0, 0)])
        self._consumer = consumer
        self._probe = Consumer(config)
        self._thread = threading.Thread(target=self._follow, name=f"registry-log-{self.topic}", daemon=True)
        self._thread.start()
        self.sync()
        log.info("registry.log.replayed", topic=self.topic, offset=self._next_offset)

    def close(self) -> None:
        """Stop following; the producer is closed without waiting (writes already committed)."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for consumer in (self._consumer, self._probe):
            if consumer is not None:
                consumer.close()
        self._consumer = self._probe = None
        self._producer = None

    def sync(self, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Return once every record committed before this call has been applied."""
        if self._probe is None:
            raise RegistryError("the registry is not started", 500, 50001)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                _, high = self._probe.get_watermark_offsets(self._partition, timeout=timeout_s, cached=False)
                break
            except KafkaException as exc:
                # A topic created a moment ago (or a partition whose leader moves) is briefly unknown to
                # this client's metadata: that passes, so ask again until the deadline.
                passing = exc.args[0].code() in _PASSING_METADATA_ERRORS
                if not passing or time.monotonic() > deadline:
                    raise RegistryError(f"registry storage unreachable: {exc}", 500, 50002) from exc
                time.sleep(0.1)
        self._wait_for(high, timeout_s)

    def _wait_for(self, offset: int, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Block until the records before ``offset`` are applied."""
        deadline = time.monotonic() + timeout_s
        with self._progress:
            while self._next_offset < offset:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed.is_set():
                    raise RegistryError(
                        f"registry storage did not catch up to offset {offset} within {timeout_s:.0f}s",
                        500,
                        50002,
                    )
                self._progress.wait(min(remaining, 0.5))

    def begin(self) -> None:
        """Make sure this instance holds a live transactional producer (initialising fences others)."""
        if self._producer is None:
            config = self._connection.producer()
            config.update(
                {
                    "transactional.id": f"govbus-registry-{self.topic}",
                    "transaction.timeout.ms": 10_000,
                    "linger.ms": 0,
                    "compression.type": "none",
                    # A fresh broker answers "coordinator load in progress" at first, which librdkafka
                    # retries by itself: not worth a warning on every first start.
                    "log_level": 3,
                }
            )
            producer = Producer(config)
            try:
                producer.init_transactions(SYNC_TIMEOUT_S)
            except KafkaException as exc:
                raise RegistryError(f"registry storage unreachable: {exc}", 500, 50002) from exc
            self._producer = producer

    def commit(self, records: Sequence[Record]) -> None:
        """Write ``records`` in one transaction and wait until they are applied here.

        Raises FencedError when another instance took over the transactional id since :meth:`begin`.
        """
        producer = self._producer
        if producer is None:
            raise RegistryError("begin() before commit()", 500, 50001)
        offsets: list[int] = []

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                offsets.append(int(message.offset() or 0))

        try:
            producer.begin_transaction()
            for key, value in records:
                producer.produce(
                    self.topic,
                    key=encode_json(key),
                    value=encode_json(value),
                    partition=0,
                    on_delivery=delivered,
                )
            producer.commit_transaction(SYNC_TIMEOUT_S)
        except KafkaException as exc:
            self._producer = None
            error = exc.args[0]
            if isinstance(error, KafkaError) and (
                error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED) or error.fatal()
            ):
                raise FencedError(str(error)) from exc
            raise RegistryError(f"registry storage refused the write: {exc}", 500, 50001) from exc
        # Wait for our own records: right after the commit the watermark may not cover them yet,
        # because Kafka writes the commit markers after answering the commit.
        self._wait_for(max(offsets, default=-1) + 1)

    def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self._closed.is_set():
            message = consumer.poll(POLL_S)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._advance(int(message.offset() or 0))
                else:
                    log.warning("registry.log.error", topic=self.topic, error=str(error))
                continue
            self._apply_message(message.key(), message.value(), int(message.offset() or 0))
            self._advance(int(message.offset() or 0) + 1)

    def _apply_message(self, raw_key: bytes | None, raw_value: bytes | None, offset: int) -> None:
        assert self._apply is not None
        try:
            key = json.loads(raw_key or b"null")
            value = None if raw_value is None else json.loads(raw_value)
            if not isinstance(key, dict) or not (value is None or isinstance(value, dict)):
                raise TypeError("key and value must be JSON objects")
            self._apply(key, value)
        except (ValueError, TypeError, KeyError) as exc:
            # A record this version cannot read must not stop the registry; say which one it was.
            log.error("registry.log.unreadable_record", topic=self.topic, offset=offset, error=str(exc))

    def _advance(self, offset: int) -> None:
        with self._progress:
            if offset > self._next_offset:
                self._next_offset = offset
                self._progress.notify_all()
