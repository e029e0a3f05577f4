"""How far each adapter is behind its topics, from the store's positions: also for adapters not running.

The applied offset of a partition is the position the adapter recorded in the store with its rows
(not the consumer group's committed offset), so the figure is right for a stopped adapter and for
one whose group never committed; the end offset is the partition's high watermark.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from bus.errors import ConfigurationError, KafkaUnavailableError
from bus.kafka_config import KafkaConnection, missing_topics
from consumers.readmodel import ReadModel
from consumers.stores import Store

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PartitionLag:
    """One partition of an adapter's topics: the last applied offset (None: nothing yet), the end, the lag."""

    topic: str
    partition: int
    applied: int | None
    end: int
    lag: int


@dataclass(frozen=True)
class AdapterLag:
    """An adapter's lag per partition, in topic and partition order."""

    adapter: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        """Records on the adapter's topics it has not applied yet."""
        return sum(p.lag for p in self.partitions)


def measure_lag(
    connection: KafkaConnection,
    store: Store,
    models: Iterable[ReadModel],
    topic_prefix: str = "",
    timeout_s: float = TIMEOUT_S,
) -> list[AdapterLag]:
    """The lag of each model's adapter; raises ConfigurationError naming topics that do not exist.

    The consumer used for the watermarks joins no group and commits nothing.
    """
    models = list(models)
    consumer = Consumer(connection.consumer(group_id="govbus-lag"))
    try:
        topics = list(dict.fromkeys(topic_prefix + t for m in models for t in m.topics))
        missing = missing_topics(consumer, topics, connection.bootstrap_servers, timeout_s)
        if missing:
            raise ConfigurationError(
                f"topics do not exist on Kafka at {connection.bootstrap_servers}: {', '.join(missing)}; "
                "create the catalog's topics with `govbus topics create`"
            )
        metadata = consumer.list_topics(timeout=timeout_s).topics
        watermarks: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in topics:
            for partition in sorted(metadata[topic].partitions):
                watermarks[(topic, partition)] = _watermarks(
                    consumer, TopicPartition(topic, partition), connection.bootstrap_servers, timeout_s
                )
    finally:
        consumer.close()
    result = []
    for model in models:
        applied = store.positions(model.name)
        rows = []
        for topic in (topic_prefix + t for t in model.topics):
            for (name, partition), (low, high) in watermarks.items():
                if name == topic:
                    last = applied.get((topic, partition))
                    # The next record the adapter applies; records below the low watermark are gone.
                    following = max(low, 0 if last is None else last + 1)
                    rows.append(PartitionLag(topic, partition, last, high, max(high - following, 0)))
        result.append(AdapterLag(model.name, tuple(rows)))
    return result


_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
    }
)
"""Answers a partition gives while its leader is being elected (a topic created a moment ago)."""


def _watermarks(consumer: Consumer, tp: TopicPartition, bootstrap: str, timeout_s: float) -> tuple[int, int]:
    """A partition's (low, high) watermarks, asked again while its leader moves, until ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() not in _LEADER_MOVING or time.monotonic() > deadline:
                raise KafkaUnavailableError(
                    f"Kafka at {bootstrap} gave no end offset of {tp.topic}[{tp.partition}]: {error.str()}",
                    bootstrap,
                ) from exc
            time.sleep(0.1)
