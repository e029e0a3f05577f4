"""Creating topics on purpose: the broker never auto-creates them, so a typo never becomes a topic.

A created topic is ready when :func:`ensure_topics` returns: the call waits until the leader of every
new partition serves it. Kafka answers CreateTopics once the controller recorded the topic, and the
broker opens the partitions' logs afterwards (on a busy broker, a second or more for a few dozen
partitions); a producer that writes in between gets "not leader" answers and retries. That retry path
of an idempotent librdkafka producer on a brand-new partition was seen to lose a message while reporting
it delivered (a delivery report without an offset; see the README's *Decisions worth knowing*), so
govbus does not write to a partition before its leader serves it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported from cimpl
    AdminClient,
    NewTopic,
    OffsetSpec,
)

from bus.errors import ConfigurationError
from bus.kafka_config import KafkaConnection

log = structlog.get_logger(__name__)


def ensure_topics(
    connection: KafkaConnection,
    topics: Iterable[str],
    partitions: int = 3,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet and wait until they are served; return the ones created.

    Raises ConfigurationError when Kafka does not answer, refuses a topic, or does not serve every
    new partition within ``timeout_s``.
    """
    admin = AdminClient(connection.admin())
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise ConfigurationError(f"Kafka at {connection.bootstrap_servers} does not answer: {exc}") from exc
    wanted = [t for t in dict.fromkeys(topics) if t not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [
            NewTopic(t, num_partitions=partitions, replication_factor=replication_factor, config=config or {})
            for t in wanted
        ],
        operation_timeout=timeout_s,
    )
    created: list[str] = []
    for topic, future in futures.items():
        try:
            future.result()
            created.append(topic)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise ConfigurationError(f"could not create topic {topic!r}: {error}") from exc
    wait_until_served(connection, admin, created, partitions, timeout_s)
    log.info("topics.created", topics=created)
    return created


def wait_until_served(
    connection: KafkaConnection, admin: AdminClient, topics: list[str], partitions: int, timeout_s: float
) -> None:
    """Wait until the leader of each partition of ``topics`` answers a ListOffsets for it.

    A leader answers once the partition's log is open, which is also when it accepts writes. After a
    round with partitions still pending, the next round asks through a new admin client: a client
    keeps the leaders it learned, and a just-created topic's first metadata may name none.
    """
    pending = {(topic, partition) for topic in topics for partition in range(partitions)}
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        futures = admin.list_offsets(
            {TopicPartition(t, p): OffsetSpec.latest() for t, p in pending},  # type: ignore[no-untyped-call]
            request_timeout=max(min(deadline - time.monotonic(), 5.0), 1.0),
        )
        for tp, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:  # not served yet (no leader known, or its log is not open)
                last = str(exc.args[0].str() if isinstance(exc.args[0], KafkaError) else exc)
                continue
            pending.discard((tp.topic, tp.partition))
        if not pending:
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{t}[{p}]" for t, p in sorted(pending)[:5])
            raise ConfigurationError(
                f"Kafka at {connection.bootstrap_servers} created the topics but did not serve "
                f"{len(pending)} of their partitions within {timeout_s:g}s (e.g. {waiting}: {last})"
            )
        time.sleep(0.05)
        admin = AdminClient(connection.admin())
