"""Dead letters: a record a projection cannot apply goes to ``{adapter}.dlq`` with its cause, unchanged.

The original key, value and headers are kept so the record can be replayed once the cause is
fixed; ``govbus_dlq_*`` headers say where it came from and why it was set aside.
:func:`read_dead_letters` reads them back (``govbus dlq list``, ``govbus dlq replay``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from bus.delivery import delivery_failure
from bus.errors import ConfigurationError, PublishError
from bus.kafka_config import KafkaConnection, missing_topics

DLQ_HEADER_PREFIX = "govbus_dlq_"
READ_TIMEOUT_S = 10.0


def dlq_topic(adapter: str) -> str:
    """The dead-letter topic of ``adapter``."""
    return f"{adapter}.dlq"


def dead_letter_headers(
    adapter: str, message: Message, cause: BaseException
) -> list[tuple[str, str | bytes | None]]:
    """A dead letter's headers: the record's own, then ``govbus_dlq_*`` naming adapter, origin and cause."""
    original = message.headers() or []
    headers: list[tuple[str, str | bytes | None]] = list(
        original.items() if isinstance(original, dict) else original
    )
    headers += [
        ("govbus_dlq_adapter", adapter.encode()),
        ("govbus_dlq_topic", str(message.topic()).encode()),
        ("govbus_dlq_partition", str(message.partition()).encode()),
        ("govbus_dlq_offset", str(message.offset()).encode()),
        ("govbus_dlq_error", type(cause).__name__.encode()),
        ("govbus_dlq_reason", str(cause).encode()),
    ]
    return headers


class DeadLetters:
    """Produces dead letters and waits for their acknowledgement before the caller moves on.

    Every dead letter's delivery report is checked: :meth:`flush` raises when one is still unanswered
    or was refused (a missing DLQ topic, an authorization error), so the caller never records the
    position of a record whose dead letter Kafka does not hold.
    """

    def __init__(self, connection: KafkaConnection, adapter: str, topic_prefix: str = "") -> None:
        self.topic = topic_prefix + dlq_topic(adapter)
        self._adapter = adapter
        self._connection = connection
        self._producer: Producer | None = None
        self._refused: list[str] = []
        self.count = 0

    def send(self, message: Message, cause: BaseException) -> None:
        """Queue ``message`` with ``cause``; call :meth:`flush` before committing its offset."""
        if self._producer is None:
            self._producer = Producer(self._connection.producer())
        self._producer.produce(
            self.topic,
            key=message.key(),
            value=message.value(),
            headers=dead_letter_headers(self._adapter, message, cause),
            on_delivery=self._report,
        )
        self.count += 1

    def _report(self, error: KafkaError | None, message: Message) -> None:
        failure = delivery_failure(error, message)
        if failure is not None:
            self._refused.append(failure)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every dead letter is acknowledged; raise if one was refused or is still unanswered."""
        if self._producer is None:
            return
        unanswered = self._producer.flush(timeout_s)
        refused, self._refused = self._refused, []
        if unanswered > 0:
            raise PublishError(f"{unanswered} dead letters to {self.topic} unacknowledged after {timeout_s}s")
        if refused:
            raise PublishError(
                f"Kafka did not confirm {len(refused)} dead letters to {self.topic}: {refused[0]}"
                " (does the topic exist? `govbus topics create` creates it)"
            )


@dataclass(frozen=True)
class DeadLetter:
    """One record of ``{adapter}.dlq``: the original record and why it was set aside."""

    dlq_partition: int
    dlq_offset: int
    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    error: str
    reason: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    """The original record's headers (the ``govbus_dlq_*`` ones left out)."""

    def original(self) -> Message:
        """The record as it was on its own topic, at its own partition and offset, for decoding again."""
        return Message(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=self.key,
            value=self.value,
            headers=list(self.headers),
        )

    def summary(self) -> dict[str, str | int | None]:
        """What ``govbus dlq list --json`` prints for this letter."""
        return {
            "dlq_partition": self.dlq_partition,
            "dlq_offset": self.dlq_offset,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "error": self.error,
            "reason": self.reason,
        }


def read_dead_letters(
    connection: KafkaConnection, adapter: str, topic_prefix: str = "", timeout_s: float = READ_TIMEOUT_S
) -> list[DeadLetter]:
    """Every dead letter of ``adapter``, read from the beginning to the end offset of each DLQ partition.

    The reader is assigned its partitions (it joins no group and commits nothing), so reading never
    moves anyone's offsets. Letters are ordered by DLQ partition and offset: the DLQ keeps the
    original key, so one key's letters are in the order they were set aside. A reaction writes its dead
    letters in Kafka transactions: the reader (``read_committed``) never sees aborted ones, and a
    partition's end may be a transaction marker no record stands at, so a partition is also done when
    the reader reaches its end (``enable.partition.eof``).
    """
    topic = topic_prefix + dlq_topic(adapter)
    consumer = Consumer(
        connection.consumer(group_id=f"govbus-dlq-reader.{topic}", **{"enable.partition.eof": True})
    )
    try:
        if missing_topics(consumer, [topic], connection.bootstrap_servers, timeout_s):
            raise ConfigurationError(
                f"the dead-letter topic {topic} does not exist on Kafka at {connection.bootstrap_servers}; "
                "create it with `govbus topics create`"
            )
        ends: dict[int, int] = {}
        start: list[TopicPartition] = []
        for partition in sorted(consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s, cached=False
            )
            if high > low:
                ends[partition] = high
                start.append(TopicPartition(topic, partition, low))
        consumer.assign(start)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout_s
        while ends:
            message = consumer.poll(0.2)
            error = None if message is None else message.error()
            if message is not None and error is not None and error.code() == KafkaError._PARTITION_EOF:
                ends.pop(int(message.partition() or 0), None)
                continue
            if message is None or error is not None:
                if time.monotonic() > deadline:
                    raise ConfigurationError(
                        f"reading {topic} on Kafka at {connection.bootstrap_servers} "
                        f"stalled for {timeout_s:g}s"
                    )
                continue
            deadline = time.monotonic() + timeout_s
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            end = ends.get(partition)
            if end is None or offset >= end:
                continue
            letters.append(_letter(message))
            if offset + 1 >= end:
                del ends[partition]
    finally:
        consumer.close()
    return sorted(letters, key=lambda letter: (letter.dlq_partition, letter.dlq_offset))


def _letter(message: Message) -> DeadLetter:
    raw = message.headers() or []
    pairs = [(name, _bytes(value)) for name, value in (raw.items() if isinstance(raw, dict) else raw)]
    ours = {name: _text(value) for name, value in pairs if name.startswith(DLQ_HEADER_PREFIX)}
    original = tuple((name, value) for name, value in pairs if not name.startswith(DLQ_HEADER_PREFIX))
    found = dict(original)
    return DeadLetter(
        dlq_partition=int(message.partition() or 0),
        dlq_offset=int(message.offset() or 0),
        topic=ours.get("govbus_dlq_topic", ""),
        partition=int(ours.get("govbus_dlq_partition") or 0),
        offset=int(ours.get("govbus_dlq_offset") or 0),
        event_id=_text(found["ce_id"]) if found.get("ce_id") is not None else None,
        event_type=_text(found["ce_type"]) if found.get("ce_type") is not None else None,
        error=ours.get("govbus_dlq_error", ""),
        reason=ours.get("govbus_dlq_reason", ""),
        key=_bytes(message.key()),
        value=_bytes(message.value()),
        headers=original,
    )


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode(errors="replace")
