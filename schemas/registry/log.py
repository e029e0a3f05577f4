"""The registry's storage port, :class:`RegistryLog`, and its Kafka adapter, :class:`KafkaRegistryLog`.

The registry keeps every change as a record of one ordered, compacted log. The service relies on four
things from any storage (the contract suite in ``tests/unit/test_registry_log.py`` checks each of them
on every adapter):

- *order*: records reach ``apply`` in commit order, on every instance that shares the storage;
- *replay and catch-up*: :meth:`~RegistryLog.start` replays what is stored and keeps following, and
  :meth:`~RegistryLog.sync` returns once everything committed before the call has been applied;
- *compaction*: storage may keep only the latest record of each key; every key's latest value is
  self-contained (see :mod:`schemas.registry.state`), so a replay then ends in the same state;
- *fencing*: :meth:`~RegistryLog.begin` makes this instance the writer and fences the one before it; a
  :meth:`~RegistryLog.commit` after another instance began writes nothing and raises
  :class:`FencedError`, and the service catches up and decides again.

:mod:`schemas.registry.memory_log` holds the adapter in memory (tests, embedding). Here, the Kafka one:
one compacted, single-partition topic (``_schemas`` by default) that every instance follows from its
beginning with a ``read_committed`` consumer. Writes are Kafka transactions of one transactional id
shared by every instance of the topic (``govbus-registry-{topic}``): initialising it is what fences the
previous writer. A commit that loses to another instance fails in one of three ways, and all three mean
"nothing was written, decide again": the broker fences the producer (``_FENCED``); or the transaction
turns abortable, e.g. Kafka 4.1's coordinator answers ``UNKNOWN_SERVER_ERROR`` to an EndTxn that arrives
while another instance's InitProducerId is fencing the epoch (its log shows ``IllegalStateException:
Preparing transaction state transition to PREPARE_COMMIT while it already a pending state
PREPARE_EPOCH_FENCE``); or ``init_transactions`` itself is fenced by a concurrent one. A retriable
commit error (a timeout) is retried, as librdkafka asks, because the commit may still land.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Protocol

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from bus.errors import RegistryError
from bus.kafka_config import KafkaConnection
from bus.topics import ensure_topics
from schemas.registry.state import Record, encode_json

log = structlog.get_logger(__name__)

DEFAULT_TOPIC = "_schemas"
SYNC_TIMEOUT_S = 30.0
POLL_S = 0.1
ABORT_TIMEOUT_S = 5.0
Apply = Callable[[dict[str, Any], dict[str, Any] | None], None]

FENCING_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})
NOT_YET_KNOWN = frozenset(
    {
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)


class FencedError(Exception):
    """Another instance began writing after this one: nothing was written; catch up and decide again."""


class RegistryLog(Protocol):
    """The storage port :class:`~schemas.registry.service.SchemaRegistry` depends on."""

    def start(self, apply: Apply) -> None:
        """Replay the stored records into ``apply`` in order and keep following new ones."""

    def close(self) -> None:
        """Stop following; committed records stay stored."""

    def sync(self, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Return once every record committed before this call has been applied."""

    def begin(self) -> None:
        """Make this instance the writer (fencing the previous one) unless it already is."""

    def commit(self, records: Sequence[Record]) -> None:
        """Store ``records`` atomically and apply them here before returning.

        Raises FencedError, writing nothing, when another instance began writing since :meth:`begin`.
        """


def apply_stored(apply: Apply, raw_key: bytes | None, raw_value: bytes | None, where: dict[str, Any]) -> None:
    """Decode one stored record and apply it; one this version cannot read is logged and skipped."""
    try:
        key = json.loads(raw_key or b"null")
        value = None if raw_value is None else json.loads(raw_value)
        if not isinstance(key, dict) or not (value is None or isinstance(value, dict)):
            raise TypeError("key and value must be JSON objects")
        apply(key, value)
    except (ValueError, TypeError, KeyError) as exc:
        # A record this version cannot read must not stop the registry; say which one it was.
        log.error("registry.log.unreadable_record", error=str(exc), **where)


class Outcome(Enum):
    """What a failed transactional call means for the write (see :func:`failed_write_outcome`)."""

    RETRY_COMMIT = "retry the commit: it may still land"
    ABORT_AND_DECIDE_AGAIN = "abort the transaction, then decide again: nothing was written"
    DECIDE_AGAIN = "drop the fenced producer, then decide again: nothing was written"
    REFUSED = "drop the producer and answer an error: the storage refuses this instance"


def failed_write_outcome(error: KafkaError) -> Outcome:
    """How the registry reacts to ``error`` from a transactional call, by librdkafka's own classification."""
    if error.code() in FENCING_CODES:
        return Outcome.DECIDE_AGAIN
    if error.fatal():
        return Outcome.REFUSED
    if error.txn_requires_abort():
        return Outcome.ABORT_AND_DECIDE_AGAIN
    if error.retriable():
        return Outcome.RETRY_COMMIT
    return Outcome.REFUSED


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
        probe = self._probe
        if probe is None:
            raise RegistryError("the registry is not started", 500, 50001)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                remaining = max(deadline - time.monotonic(), POLL_S)
                _, high = probe.get_watermark_offsets(self._partition, timeout=remaining, cached=False)
                break
            except KafkaException as exc:
                error = exc.args[0]
                # A topic created a moment ago (by this instance or another), or a partition whose
                # leader moves, is briefly unknown to this client's metadata: ask again until the deadline.
                pending = isinstance(error, KafkaError) and error.code() in NOT_YET_KNOWN
                if not pending or time.monotonic() > deadline:
                    raise RegistryError(f"registry storage unreachable: {exc}", 503, 50002) from exc
                time.sleep(POLL_S)
        self._wait_for(high, max(deadline - time.monotonic(), POLL_S))

    def _wait_for(self, offset: int, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Block until the records before ``offset`` are applied."""
        deadline = time.monotonic() + timeout_s
        with self._progress:
            while self._next_offset < offset:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed.is_set():
                    raise RegistryError(
                        f"registry storage did not catch up to offset {offset} within {timeout_s:.0f}s",
                        503,
                        50002,
                    )
                self._progress.wait(min(remaining, 0.5))

    def begin(self) -> None:
        """Make sure this instance holds a live transactional producer (initialising fences others)."""
        if self._producer is not None:
            return
        config = self._connection.producer()
        config.update(
            {
                "transactional.id": f"govbus-registry-{self.topic}",
                "transaction.timeout.ms": 10_000,
                "linger.ms": 0,
                "compression.type": "none",
                # A fresh broker answers "coordinator load in progress" at first, and instances
                # fence each other on purpose: librdkafka's lines for both are not worth a warning.
                "log_level": 3,
            }
        )
        producer = Producer(config)
        try:
            producer.init_transactions(SYNC_TIMEOUT_S)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() in FENCING_CODES:
                # Two instances initialised at once and the other one won.
                raise FencedError(str(error)) from exc
            raise RegistryError(f"registry storage unreachable: {exc}", 503, 50002) from exc
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

        # Encoded before the transaction begins: a record that cannot be encoded leaves none open.
        encoded = [(encode_json(key), encode_json(value)) for key, value in records]
        try:
            producer.begin_transaction()
            for key, value in encoded:
                producer.produce(self.topic, key=key, value=value, partition=0, on_delivery=delivered)
            self._commit_transaction(producer)
        except KafkaException as exc:
            raise self._failed(producer, exc) from exc
        except BaseException:
            self._abandon(producer)
            raise
        # Wait for our own records: right after the commit the watermark may not cover them yet,
        # because Kafka writes the commit markers after answering the commit.
        self._wait_for(max(offsets, default=-1) + 1)

    @staticmethod
    def _commit_transaction(producer: Producer) -> None:
        """Commit; a retriable failure (a timeout) is retried, because the commit may still land."""
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        while True:
            try:
                # No timeout: librdkafka then waits for the rest of transaction.timeout.ms, as it advises.
                producer.commit_transaction()
                return
            except KafkaException as exc:
                error = exc.args[0]
                again = isinstance(error, KafkaError) and failed_write_outcome(error) is Outcome.RETRY_COMMIT
                if not again or time.monotonic() > deadline:
                    raise
                log.info("registry.log.commit_retried", reason=str(error))

    def _abandon(self, producer: Producer) -> None:
        """Abort the open transaction after an unexpected failure, so the next write can begin one."""
        try:
            producer.abort_transaction(ABORT_TIMEOUT_S)
        except KafkaException:
            self._producer = None  # the next begin() starts a producer whose init aborts it

    def _failed(self, producer: Producer, exc: KafkaException) -> Exception:
        """The exception a failed transaction turns into, with the producer aborted or dropped."""
        error = exc.args[0]
        outcome = failed_write_outcome(error) if isinstance(error, KafkaError) else Outcome.REFUSED
        log.info("registry.log.commit_failed", topic=self.topic, error=str(error), outcome=outcome.name)
        if outcome is Outcome.ABORT_AND_DECIDE_AGAIN:
            try:
                producer.abort_transaction(ABORT_TIMEOUT_S)
            except KafkaException:
                # Usually fenced meanwhile; the next begin() starts a producer whose init aborts it.
                self._producer = None
            return FencedError(str(error))
        self._producer = None
        if outcome is Outcome.DECIDE_AGAIN:
            return FencedError(str(error))
        return RegistryError(f"registry storage refused the write: {exc}", 500, 50001)

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
            offset = int(message.offset() or 0)
            assert self._apply is not None
            apply_stored(self._apply, message.key(), message.value(), {"topic": self.topic, "offset": offset})
            self._advance(offset + 1)

    def _advance(self, offset: int) -> None:
        with self._progress:
            if offset > self._next_offset:
                self._next_offset = offset
                self._progress.notify_all()
