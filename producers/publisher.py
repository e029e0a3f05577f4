"""The publisher SDK that agency systems embed: one call per event, nothing lost, nothing doubled.

Each event is checked against its catalog schema before anything is sent, framed in Confluent
wire format with a schema id resolved once per schema, keyed by its aggregate id and sent with
CloudEvents headers through an idempotent, acks=all producer. An agency may publish only the
event types of its own topics.

Throughput decisions (see ``make bench``): everything that is the same for every event of a type
(topic, schema id framing, static headers, the encoder compiled from its schema by
:mod:`schemas.fast_encoder`, in C when the extension is built) is computed once per type;
librdkafka's delivery reports are served every :data:`POLL_EVERY` events instead of after each
one; when librdkafka's local queue is full, ``publish`` waits for deliveries (backpressure)
instead of raising. By default the delivery reports go to one producer-wide callback that counts
failures (successes are counted in aggregate); a caller that needs each event's outcome passes
``on_delivery`` and gets it for that event.

A delivery is confirmed only by an offset (:mod:`bus.delivery`): a report without one counts as a
failed delivery, so the caller publishes the event again; consumers drop the copy by its event id if
it was written after all.

Failures read as sentences: the first event of a topic asks the cluster whether the topic exists
(the brokers do not create topics on first use), so a missing topic fails at once with
:class:`~bus.errors.UnknownTopicError` instead of every event failing on its own later; failed
deliveries are counted per topic and error and reported together by :meth:`Publisher.close`
("512 events to localgov.resident failed: Local: Message timed out"), never one line per event.

Every event carries the ``dataclassification`` extension, the highest classification of its type's
fields (``sensitive`` for a resident registration); a caller's own ``dataclassification`` extension,
sent after it, takes precedence for readers that keep the last header of a name.
"""

from __future__ import annotations

import atexit
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from bus.delivery import delivery_failure
from bus.errors import (
    KafkaUnavailableError,
    PublishError,
    SchemaNotFoundError,
    SerializationError,
    UnknownTopicError,
)
from bus.kafka_config import KafkaConnection, missing_topics
from producers.events.base import AvroEvent
from schemas.catalog import CLASSIFICATIONS, Catalog, EventType
from schemas.codec import header
from schemas.envelope import CONTENT_TYPE, SPEC_VERSION, format_time, new_event_id
from schemas.fast_encoder import Encoder, compile_encoder

log = structlog.get_logger(__name__)
EXIT_FLUSH_S = 10.0
_open_publishers: weakref.WeakSet[Publisher] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Give events still queued in a publisher nobody closed a chance to arrive before the process ends."""
    for publisher in list(_open_publishers):
        remaining = publisher.flush(EXIT_FLUSH_S)
        if remaining:
            log.error("publisher.exit.undelivered", agency=publisher.agency, remaining=remaining)
        publisher.log_failures()


DeliveryCallback = Callable[[str, PublishError | None], None]
POLL_EVERY = 1000
BACKPRESSURE_WAIT_S = 0.05
METADATA_TIMEOUT_S = 10.0
HeaderList = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class _Route:
    """Everything about an event type that is the same for each of its events."""

    full_name: str
    topic: str
    key_field: str
    encoder: Encoder
    framing: bytes
    static_headers: tuple[tuple[str, bytes], ...]
    """The CloudEvents headers every event of the type carries, encoded once (librdkafka would encode
    text headers again for every event)."""


class SchemaIds(Protocol):
    """Where a publisher learns the registry id of each schema it writes (a RegistryClient, or the
    gateway's own registry)."""

    def lookup(self, subject: str, schema_text: str) -> int:
        """The id of ``schema_text`` registered under ``subject``."""
        ...


class PreparedEvent(NamedTuple):
    """An event checked and encoded by :meth:`Publisher.prepare`, ready to be sent as it is.

    A named tuple: made for every event the publish API takes, and a frozen dataclass cost a sixth of
    preparing one."""

    event_id: str
    topic: str
    key: str
    value: bytes
    headers: HeaderList


class Publisher:
    """Publishes one agency's catalog events to Kafka."""

    def __init__(
        self,
        connection: KafkaConnection,
        registry: SchemaIds,
        catalog: Catalog,
        agency: str,
        source: str,
        topic_prefix: str = "",
        metadata_timeout_s: float = METADATA_TIMEOUT_S,
    ) -> None:
        if not catalog.for_agency(agency):
            raise SchemaNotFoundError(f"the catalog has no event types for agency {agency!r}")
        self._connection = connection
        self._registry = registry
        self._catalog = catalog
        self.agency = agency
        self.source = source
        self.topic_prefix = topic_prefix
        self._metadata_timeout_s = metadata_timeout_s
        self._producer: Producer | None = None
        self._routes: dict[str, _Route] = {}
        self._known_topics: set[str] = set()
        self._since_poll = 0
        self._clock_ms = -1
        self._clock_text = ""
        self.published = 0
        self.failed = 0
        self._failures: Counter[tuple[str, str]] = Counter()

    @property
    def delivered(self) -> int:
        """Events Kafka acknowledged so far (exact once :meth:`flush` returned 0)."""
        in_flight = 0 if self._producer is None else len(self._producer)
        return self.published - self.failed - in_flight

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

        Raises PublishError when the event type is not this agency's (UnknownTopicError when its
        topic does not exist), and SerializationError when the payload does not fit its schema or
        lacks its key; in each case nothing is sent.
        """
        route = self._routes.get(event_type) or self._route(event_type)
        key, encoded, event_id, headers = self._encode(route, payload, event_id, time, extensions)
        producer = self._producer
        if on_delivery is None and producer is not None:
            # The hot path, inlined (a method call is a measurable share of the per-event cost);
            # a full local queue takes the slow path in _produce, which waits for room.
            try:
                producer.produce(route.topic, value=encoded, key=key, headers=headers)
            except BufferError:
                self._produce(route.topic, key, encoded, headers, None)
                return event_id
            except KafkaException as exc:
                raise PublishError(f"{route.topic}: {exc}") from exc
            self.published += 1
            self._since_poll += 1
            if self._since_poll >= POLL_EVERY:
                self._since_poll = 0
                producer.poll(0)
            return event_id
        callback = None if on_delivery is None else _per_event(event_id, route.topic, on_delivery)
        self._produce(route.topic, key, encoded, headers, callback)
        return event_id

    def ready(self, event_type: str) -> bool:
        """Whether ``event_type`` was published or prepared before: its topic is known to exist and its
        schema id is known, so :meth:`prepare` of it calls neither Kafka nor the registry."""
        return event_type in self._routes

    def preparer(self, event_type: str) -> Callable[..., PreparedEvent]:
        """:meth:`prepare` for many events of one type: ``preparer(t)(payload, event_id=..., time=...,
        extensions=...)`` is ``prepare(t, payload, ...)`` with the type's route looked up once (it may
        ask Kafka and the registry then, raising as ``prepare`` does)."""
        route = self._routes.get(event_type) or self._route(event_type)
        encode = self._encode

        def prepare(
            payload: Mapping[str, Any],
            *,
            event_id: str | None = None,
            time: datetime | None = None,
            extensions: Mapping[str, str] | None = None,
        ) -> PreparedEvent:
            key, encoded, event_id, headers = encode(route, payload, event_id, time, extensions)
            return PreparedEvent(event_id, route.topic, key, encoded, headers)

        return prepare

    def prepare(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        extensions: Mapping[str, str] | None = None,
    ) -> PreparedEvent:
        """Check and encode one event exactly as :meth:`publish` does, without sending it.

        For callers that send events their own way (the gateway's publish API sends a whole batch in
        one Kafka transaction); raises the same errors as ``publish``.
        """
        return self.preparer(event_type)(payload, event_id=event_id, time=time, extensions=extensions)

    def _encode(
        self,
        route: _Route,
        payload: Mapping[str, Any],
        event_id: str | None,
        time: datetime | None,
        extensions: Mapping[str, str] | None,
    ) -> tuple[str, bytes, str, HeaderList]:
        """The key, the framed value, the event id and the headers of one event (nothing sent)."""
        key = payload.get(route.key_field)
        if not isinstance(key, str) or not key:
            raise SerializationError(
                f"{route.full_name}: key field {route.key_field!r} must be a non-empty string"
            )
        try:
            encoded = route.encoder.encode_framed(route.framing, payload)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise SerializationError(f"{route.full_name}: payload does not fit the schema: {exc}") from exc
        event_id = event_id or new_event_id()
        headers: HeaderList = [
            *route.static_headers,
            ("ce_id", event_id),
            ("ce_time", format_time(time) if time is not None else self._now()),
        ]
        if extensions:
            headers.extend((f"ce_{name}", value) for name, value in extensions.items() if value)
        return key, encoded, event_id, headers

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for outstanding deliveries; return how many are still undelivered."""
        if self._producer is None:
            return 0
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def publish_event(
        self,
        event: AvroEvent,
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        extensions: Mapping[str, str] | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> str:
        """Publish a typed event (a model of :mod:`producers.events`): the same checks and path as publish."""
        return self.publish(
            event.avro_full_name,
            event.to_avro(),
            event_id=event_id,
            time=time,
            extensions=extensions,
            on_delivery=on_delivery,
        )

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """After a clean block close (raising on any loss); after a failed one flush and log losses."""
        if exc_type is None:
            self.close()
        else:
            self.flush()
            self.log_failures()

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, and raise PublishError saying what was not acknowledged, per topic and error."""
        remaining = self.flush(timeout_s)
        if remaining:
            lost = [
                f"{_events(remaining)} were not acknowledged within {timeout_s:g}s",
                *self.failure_summary(),
            ]
            raise PublishError("; ".join(lost))
        # Release librdkafka's handle now, not whenever the collector gets to it: a lingering
        # producer keeps its connections and logs every broker it loses.
        self._producer = None
        _open_publishers.discard(self)
        if self._failures:
            raise PublishError("; ".join(self.failure_summary()))

    def failure_summary(self) -> list[str]:
        """One sentence per topic and error of the failed deliveries so far, with their count."""
        return [
            f"{_events(count)} to {topic} failed: {error}"
            for (topic, error), count in sorted(self._failures.items())
        ]

    def log_failures(self) -> None:
        """Log the failed deliveries so far: one line per topic and error, with the count."""
        for (topic, error), count in sorted(self._failures.items()):
            log.error("publisher.delivery.failed", agency=self.agency, topic=topic, error=error, events=count)

    def _route(self, event_type: str) -> _Route:
        kind = self._catalog.get(event_type)
        if kind.agency != self.agency:
            raise PublishError(f"agency {self.agency!r} may not publish {kind.full_name} to {kind.topic!r}")
        topic = self.topic_prefix + kind.topic
        self._require_topic(topic)
        route = _Route(
            full_name=kind.full_name,
            topic=topic,
            key_field=kind.key_field,
            encoder=compile_encoder(kind.parsed),
            framing=header(self._registry.lookup(kind.subject, kind.schema_text)),
            static_headers=tuple(
                (name, value.encode())
                for name, value in (
                    ("ce_specversion", SPEC_VERSION),
                    ("ce_source", self.source),
                    ("ce_type", kind.full_name),
                    ("content-type", CONTENT_TYPE),
                    ("ce_dataclassification", highest_classification(kind)),
                )
            ),
        )
        self._routes[event_type] = route
        return route

    def _require_topic(self, topic: str) -> None:
        """Raise UnknownTopicError unless ``topic`` exists; the cluster is asked once per topic."""
        if topic in self._known_topics:
            return
        producer = self._producer or self._start()
        bootstrap = self._connection.bootstrap_servers
        try:
            missing = missing_topics(producer, [topic], bootstrap, self._metadata_timeout_s)
        except KafkaUnavailableError as exc:
            # A PublishError, so that callers that retry a broker outage (the outbox relay) retry this too.
            raise PublishError(f"{exc} (asked whether topic {topic!r} exists)") from exc
        if missing:
            raise UnknownTopicError(
                f"topic {topic!r} does not exist on Kafka at {bootstrap}; "
                "create the catalog's topics with `govbus topics create`",
                topic,
            )
        self._known_topics.add(topic)

    def _now(self) -> str:
        """``ce_time`` for now; formatted once per millisecond."""
        now_ms = time.time_ns() // 1_000_000
        if now_ms != self._clock_ms:
            self._clock_ms = now_ms
            self._clock_text = format_time(datetime.fromtimestamp(now_ms / 1000, UTC))
        return self._clock_text

    def _produce(
        self,
        topic: str,
        key: str,
        value: bytes,
        headers: HeaderList,
        callback: Callable[[KafkaError | None, Message], None] | None,
    ) -> None:
        producer = self._producer or self._start()
        while True:
            try:
                if callback is None:
                    producer.produce(topic, value=value, key=key, headers=headers)
                else:
                    producer.produce(topic, value=value, key=key, headers=headers, on_delivery=callback)
                break
            except BufferError:
                # librdkafka's local queue is full: serve deliveries until there is room.
                producer.poll(BACKPRESSURE_WAIT_S)
            except KafkaException as exc:
                raise PublishError(f"{topic}: {exc}") from exc
        self.published += 1
        self._since_poll += 1
        if self._since_poll >= POLL_EVERY:
            self._since_poll = 0
            producer.poll(0)

    def _start(self) -> Producer:
        config: dict[str, Any] = self._connection.producer()
        config["on_delivery"] = self._on_delivery
        self._producer = Producer(config)
        _open_publishers.add(self)
        return self._producer

    def _on_delivery(self, err: KafkaError | None, message: Message) -> None:
        """The producer-wide delivery report: counts failures (successes are derived, see ``delivered``).

        A report without an error and without an offset is not a confirmed delivery
        (:data:`bus.delivery.UNCONFIRMED`).
        """
        reason = delivery_failure(err, message)
        if reason is None:
            return
        self.failed += 1
        self._failures[(str(message.topic()), reason)] += 1


def _per_event(
    event_id: str, topic: str, on_delivery: DeliveryCallback
) -> Callable[[KafkaError | None, Message], None]:
    def report(err: KafkaError | None, message: Message) -> None:
        failure = delivery_failure(err, message)
        on_delivery(event_id, None if failure is None else PublishError(f"{topic}: {failure}"))

    return report


def _events(count: int) -> str:
    return "1 event" if count == 1 else f"{count} events"


def highest_classification(kind: EventType) -> str:
    """The CloudEvents ``dataclassification`` of an event type: the highest classification of its fields."""
    return max(kind.classifications().values(), key=CLASSIFICATIONS.index)
