"""Creating topics on purpose: the broker never auto-creates them, so a typo never becomes a topic."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported from cimpl

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
    """Create the topics that do not exist yet; return the ones this call created."""
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
    log.info("topics.created", topics=created)
    return created
