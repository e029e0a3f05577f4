"""The publisher SDK that agency systems embed: one call per event, nothing lost, nothing doubled.

Each event is checked against its catalog schema before anything is sent, framed in Confluent
wire format with a schema id resolved once per schema, keyed by its aggregate id and sent with
CloudEvents headers through an idempotent, acks=all producer. An agency may publish only the
event types of its own topics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from bus.errors import PublishError, SerializationError
from bus.kafka_config import KafkaConnection
from producers.envelope import CloudEvent
from schemas.catalog import Catalog, EventType
from schemas.codec import encode
from schemas.registry_client import RegistryClient

log = structlog.get_logger(__name__)

DeliveryCallback = Callable[[str, PublishError | None], None]


class Publisher:
    """Publishes an agency's catalog events to Kafka."""

    def __init__(
        self,
        connection: KafkaConnection,
        registry: RegistryClient,
        catalog: Catalog,
        agency: str,
        source: str,
        topic_prefix: str = "",
    ) -> None:
        self._connection = connection
        self._registry = registry
        self._catalog = catalog
        self.agency = agency
        self.source = source
        self.topic_prefix = topic_prefix
        self._producer: Producer | None = None
        self._ids: dict[str, int] = {}
        self.delivered = 0
        self.failed = 0

    def publish(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        extensions: Mapping[str, str] | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> str:
        """Queue one event for delivery and return its CloudEvents id.

        Raises PublishError when the event type is not this agency's, and SerializationError when
        the payload does not fit its schema; in both cases nothing is sent.
        """
        kind = self._catalog.get(event_type)
        if kind.agency != self.agency:
            raise PublishError(f"agency {self.agency!r} may not publish {kind.full_name} to {kind.topic!r}")
        value = encode(self._schema_id(kind), kind.parsed, payload)
        key = payload.get(kind.key_field)
        if not isinstance(key, str) or not key:
            raise SerializationError(
                f"{kind.full_name}: key field {kind.key_field!r} must be a non-empty string"
            )
        envelope = CloudEvent(source=self.source, type=kind.full_name, extensions=dict(extensions or {}))
        if event_id is not None or time is not None:
            envelope = CloudEvent(
                source=self.source,
                type=kind.full_name,
                id=event_id or envelope.id,
                time=time or envelope.time,
                extensions=envelope.extensions,
            )
        self._produce(self.topic_prefix + kind.topic, key.encode(), value, envelope, on_delivery)
        return envelope.id

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for outstanding deliveries; return how many are still undelivered."""
        if self._producer is None:
            return 0
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush and report anything left undelivered."""
        remaining = self.flush(timeout_s)
        if remaining:
            log.error("publisher.close.undelivered", remaining=remaining)
            raise PublishError(f"{remaining} events were not acknowledged within {timeout_s}s")

    def _schema_id(self, kind: EventType) -> int:
        schema_id = self._ids.get(kind.full_name)
        if schema_id is None:
            schema_id = self._registry.lookup(kind.subject, kind.schema_text)
            self._ids[kind.full_name] = schema_id
        return schema_id

    def _produce(
        self, topic: str, key: bytes, value: bytes, envelope: CloudEvent, on_delivery: DeliveryCallback | None
    ) -> None:
        producer = self._ensure_producer()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            failure = None
            if err is None:
                self.delivered += 1
            else:
                self.failed += 1
                failure = PublishError(f"{topic}: {err.str()}")
                log.error("publisher.delivery.failed", topic=topic, event_id=envelope.id, error=err.str())
            if on_delivery is not None:
                on_delivery(envelope.id, failure)

        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, headers=envelope.headers(), on_delivery=delivered
                )
                break
            except BufferError:
                # librdkafka's local queue is full: wait for deliveries instead of failing the caller.
                producer.poll(0.05)
            except KafkaException as exc:
                raise PublishError(f"{topic}: {exc}") from exc
        producer.poll(0)

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._connection.producer())
        return self._producer
