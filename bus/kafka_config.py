"""A typed, frozen Kafka connection config rendered to librdkafka keys, and a probe of the cluster.

Every rendered config routes librdkafka's own log lines and error events to
:data:`bus.logging.KAFKA_CLIENT_LOG` (the ``logger`` and ``error_cb`` keys), so no client writes raw
lines on stderr. Clients are created by callers; only :func:`require_broker` makes one of its own.
:func:`missing_topics` asks through a caller's client which topics do not exist.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._metadata import ClusterMetadata

from bus.errors import KafkaUnavailableError
from bus.logging import KAFKA_CLIENT_LOG

ConfigValue = str | int | float | bool
Config = dict[str, ConfigValue]
# A rendered config: librdkafka's scalar keys plus confluent-kafka's callback keys (logger, error_cb).
ClientConfig = dict[str, Any]

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class KafkaConnection:
    """How to reach a Kafka cluster, plus the settings every govbus client shares."""

    bootstrap_servers: str
    client_id: str = "govbus"
    extra: Config = field(default_factory=dict)

    def common(self) -> ClientConfig:
        """Keys shared by producers, consumers and admin clients."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "logger": KAFKA_CLIENT_LOG,
            "error_cb": KAFKA_CLIENT_LOG.error,
            **self.extra,
        }

    def producer(self, **overrides: ConfigValue) -> ClientConfig:
        """An idempotent, acks=all producer: no loss, no duplicates from retries, order kept per key."""
        return {
            **self.common(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            **overrides,
        }

    def consumer(self, group_id: str, **overrides: ConfigValue) -> ClientConfig:
        """A consumer that never auto-commits: positions are stored by the caller (with the read model)."""
        return {
            **self.common(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            **overrides,
        }

    def admin(self) -> ClientConfig:
        """Admin client keys."""
        return self.common()


def require_broker(connection: KafkaConnection, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise KafkaUnavailableError unless the cluster answers a metadata request within ``timeout_s``.

    A command calls this before it builds its clients: librdkafka itself retries a missing broker for
    as long as a client lives, so without a deadline a command would wait (and retry) forever.
    """
    try:
        AdminClient(connection.admin()).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka at {connection.bootstrap_servers} does not answer within {timeout_s:g}s",
            connection.bootstrap_servers,
        ) from exc


# A topic created a moment ago may not be in every broker's metadata yet: ask again for this long
# before calling it missing.
UNKNOWN_TOPIC_GRACE_S = 2.0
_RETRY_S = 0.2
_UNKNOWN_TOPIC = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)


def missing_topics(
    client: Producer | Consumer, topics: Iterable[str], bootstrap: str, timeout_s: float
) -> list[str]:
    """Those of ``topics`` the cluster does not have, asked through ``client`` (one metadata request each).

    Raises KafkaUnavailableError when the cluster does not answer within ``timeout_s``. Any answer but
    "unknown topic" (a leader being elected, a denied authorization) counts as present: the client's
    own retries and reports deal with those.
    """
    deadline = time.monotonic() + UNKNOWN_TOPIC_GRACE_S
    unknown = list(dict.fromkeys(topics))
    while True:
        try:
            answers = {topic: client.list_topics(topic, timeout=timeout_s) for topic in unknown}
        except KafkaException as exc:
            raise KafkaUnavailableError(
                f"Kafka at {bootstrap} does not answer within {timeout_s:g}s", bootstrap
            ) from exc
        unknown = [topic for topic, metadata in answers.items() if _unknown(metadata, topic)]
        if not unknown or time.monotonic() >= deadline:
            return unknown
        time.sleep(_RETRY_S)


def _unknown(metadata: ClusterMetadata, topic: str) -> bool:
    found = metadata.topics.get(topic)
    return found is None or (found.error is not None and found.error.code() in _UNKNOWN_TOPIC)
