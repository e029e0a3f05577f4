"""How far each adapter is behind its topics, from the store's positions: also for adapters not running.

The applied offset of a partition is the position the adapter recorded in the store with its rows
(not the consumer group's committed offset), so the figure is right for a stopped adapter and for
one whose group never committed; the end offset is the partition's high watermark.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from bus.errors import ConfigurationError
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
                watermarks[(topic, partition)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout_s, cached=False
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
