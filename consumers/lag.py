"""How far each adapter and reaction is behind its topics: also for those not running.

For a read model the applied offset of a partition is the position the adapter recorded in the store
with its rows (not the consumer group's committed offset), so the figure is right for a stopped adapter
and for one whose group never committed. For a reaction it is the offset before the position its group
committed (``send_offsets_to_transaction`` commits it with the events it published): the last record
it has decided on. Either way the end offset is the partition's high watermark.

The reactions publish in Kafka transactions, so a partition may end in a commit marker or aborted
records, which take offsets but are never read (``read_committed``): a read model that applied the last
record before them has nothing left to read, yet the end is past its position. Where the offsets say
there is lag, a reader that joins no group looks from the next position: when it meets the end before
any record, the lag is 0.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from bus.errors import ConfigurationError, KafkaUnavailableError
from bus.kafka_config import KafkaConnection, missing_topics
from consumers.reactions.core import ReactionRules
from consumers.reactions.runtime import group_id
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
    watermarks = _watermarks(connection, [t for m in models for t in m.topics], topic_prefix, timeout_s)
    result = []
    for model in models:
        applied = store.positions(model.name)
        topics = [topic_prefix + t for t in model.topics]
        result.append(AdapterLag(model.name, _rows(topics, watermarks, applied)))
    return _past_markers(connection, result, timeout_s)


def measure_reaction_lag(
    connection: KafkaConnection,
    reactions: Iterable[ReactionRules[Any]],
    topic_prefix: str = "",
    timeout_s: float = TIMEOUT_S,
) -> list[AdapterLag]:
    """The lag of each reaction, from its group's committed offsets; raises naming missing topics.

    The committed offsets are fetched (OffsetFetch) by a consumer that joins no group, assigns nothing
    and commits nothing, so a running reaction is not disturbed.
    """
    reactions = list(reactions)
    if not reactions:
        return []
    watermarks = _watermarks(connection, [t for r in reactions for t in r.topics], topic_prefix, timeout_s)
    result = []
    for rules in reactions:
        topics = [topic_prefix + t for t in rules.topics]
        places = [TopicPartition(topic, partition) for topic, partition in watermarks if topic in topics]
        consumer = Consumer(connection.consumer(group_id=group_id(rules.name, topic_prefix)))
        try:
            committed = consumer.committed(places, timeout=timeout_s)
        except KafkaException as exc:
            raise ConfigurationError(
                f"cannot read the committed offsets of {rules.name} on Kafka at "
                f"{connection.bootstrap_servers}: {exc}"
            ) from exc
        finally:
            consumer.close()
        # A committed offset is the next record to read; none yet (negative) means nothing decided.
        applied = {(tp.topic, tp.partition): tp.offset - 1 for tp in committed if tp.offset > 0}
        result.append(AdapterLag(rules.name, _rows(topics, watermarks, applied)))
    return _past_markers(connection, result, timeout_s)


def _watermarks(
    connection: KafkaConnection, topics: Iterable[str], topic_prefix: str, timeout_s: float
) -> dict[tuple[str, int], tuple[int, int]]:
    """The low and high watermark of every partition of ``topics`` (prefixed here)."""
    consumer = Consumer(connection.consumer(group_id="govbus-lag"))
    try:
        wanted = list(dict.fromkeys(topic_prefix + t for t in topics))
        missing = missing_topics(consumer, wanted, connection.bootstrap_servers, timeout_s)
        if missing:
            raise ConfigurationError(
                f"topics do not exist on Kafka at {connection.bootstrap_servers}: {', '.join(missing)}; "
                "create the catalog's topics with `govbus topics create`"
            )
        metadata = consumer.list_topics(timeout=timeout_s).topics
        watermarks: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in wanted:
            for partition in sorted(metadata[topic].partitions):
                watermarks[(topic, partition)] = _partition_watermarks(
                    consumer, TopicPartition(topic, partition), connection.bootstrap_servers, timeout_s
                )
    finally:
        consumer.close()
    return watermarks


def _rows(
    topics: list[str],
    watermarks: dict[tuple[str, int], tuple[int, int]],
    applied: dict[tuple[str, int], int],
) -> tuple[PartitionLag, ...]:
    rows = []
    for topic in topics:
        for (name, partition), (low, high) in watermarks.items():
            if name == topic:
                last = applied.get((topic, partition))
                # The next record the adapter applies; records below the low watermark are gone.
                following = max(low, 0 if last is None else last + 1)
                rows.append(PartitionLag(topic, partition, last, high, max(high - following, 0)))
    return tuple(rows)


def _past_markers(connection: KafkaConnection, lags: list[AdapterLag], timeout_s: float) -> list[AdapterLag]:
    """``lags`` with 0 where only markers or aborted records follow the position."""
    starts = {(p.topic, p.partition, p.end - p.lag) for a in lags for p in a.partitions if p.lag > 0}
    if not starts:
        return lags
    caught_up: set[tuple[str, int, int]] = set()
    consumer = Consumer(connection.consumer(group_id="govbus-lag", **{"enable.partition.eof": True}))
    try:
        while starts:
            # One start per partition at a time: adapters reading one topic may be at different places.
            probe = {(topic, partition): start for topic, partition, start in sorted(starts)}
            starts -= {(topic, partition, start) for (topic, partition), start in probe.items()}
            caught_up |= _nothing_to_read(consumer, probe, timeout_s)
    finally:
        consumer.close()
    return [
        AdapterLag(
            a.adapter,
            tuple(
                replace(p, lag=0) if (p.topic, p.partition, p.end - p.lag) in caught_up else p
                for p in a.partitions
            ),
        )
        for a in lags
    ]


def _nothing_to_read(
    consumer: Consumer, starts: dict[tuple[str, int], int], timeout_s: float
) -> set[tuple[str, int, int]]:
    """Each (topic, partition, start) of ``starts`` where a ``read_committed`` reader meets the end first."""
    consumer.assign([TopicPartition(topic, partition, start) for (topic, partition), start in starts.items()])
    pending = set(starts)
    found: set[tuple[str, int, int]] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(len(pending), timeout=0.2):
                place = (str(message.topic()), int(message.partition() or 0))
                if place not in pending:
                    continue
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    continue
                pending.discard(place)
                if error is not None:  # the end, before any record
                    found.add((*place, starts[place]))
    finally:
        consumer.unassign()
    return found


_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
    }
)
"""Answers a partition gives while its leader is being elected (a topic created a moment ago)."""


def _partition_watermarks(
    consumer: Consumer, tp: TopicPartition, bootstrap: str, timeout_s: float
) -> tuple[int, int]:
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
