"""The publisher SDK against real Kafka: delivery, ownership, validation, and a broker restart mid-stream."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
from confluent_kafka import Consumer

from bus.credentials import client_credential
from bus.errors import PublishError, SerializationError, UnknownTopicError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from govbus.local_kafka import LocalKafka
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator
from producers.simulators.simulation import simulated_events
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient

pytestmark = pytest.mark.integration
TOPIC = "localgov.resident"


def _publisher(bootstrap: str, registry: RegistryClient, prefix: str, **overrides: str | int) -> Publisher:
    connection = KafkaConnection(bootstrap, extra=dict(overrides))
    return Publisher(connection, registry, load_catalog(), "localgov", "urn:govbus:agency:localgov", prefix)


def _event_ids(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> Counter[str]:
    """Every ce_id in ``topic`` (read from the beginning until ``expected`` records or the timeout)."""
    consumer = Consumer(KafkaConnection(bootstrap).consumer(group_id=f"verify-{topic}"))
    consumer.subscribe([topic])
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + timeout_s
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        batch = consumer.consume(num_messages=1000, timeout=0.5)
        records = [m for m in batch if m.error() is None]
        for message in records:
            seen[dict(message.headers() or [])["ce_id"].decode()] += 1
        if records:
            idle_since = time.monotonic()
        elif sum(seen.values()) >= expected and time.monotonic() - idle_since > 2:
            break
    consumer.close()
    return seen


def test_every_published_event_is_acknowledged_and_readable(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """Published events arrive once each, keyed by resident id, with their CloudEvents headers."""
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [bus_settings.topic_prefix + TOPIC])
    publisher = _publisher(bus_settings.kafka_bootstrap, registry, bus_settings.topic_prefix)
    outcomes: dict[str, PublishError | None] = {}
    ids = [
        publisher.publish(e.type, e.data, on_delivery=outcomes.__setitem__)
        for e in LocalGovSimulator(seed=21).events(500)
    ]
    publisher.close()
    assert publisher.delivered == 500
    assert outcomes == dict.fromkeys(ids)
    assert _event_ids(bus_settings.kafka_bootstrap, bus_settings.topic_prefix + TOPIC, 500) == Counter(ids)


def test_another_agencys_event_is_refused_before_sending(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """An agency publishing outside its own topics gets PublishError and nothing is produced."""
    finance = Publisher(
        KafkaConnection(bus_settings.kafka_bootstrap),
        registry,
        load_catalog(),
        "finance",
        "urn:govbus:agency:finance",
    )
    event = next(LocalGovSimulator(seed=1).events(1))
    with pytest.raises(PublishError, match="may not publish"):
        finance.publish(event.type, event.data)
    assert finance.published == 0


def test_invalid_event_raises_before_anything_is_sent(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """A payload that does not fit its schema raises SerializationError and is not produced."""
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [bus_settings.topic_prefix + TOPIC])
    publisher = _publisher(bus_settings.kafka_bootstrap, registry, bus_settings.topic_prefix)
    event = next(LocalGovSimulator(seed=1).events(1))
    broken = {**event.data, "birth_date": "yesterday"}
    with pytest.raises(SerializationError, match="ResidentRegistered"):
        publisher.publish(event.type, broken)
    with pytest.raises(SerializationError, match="resident_id"):
        publisher.publish(event.type, {**event.data, "resident_id": ""})
    assert publisher.published == 0


def test_publishing_to_a_missing_topic_fails_at_once_naming_it_and_the_fix(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """The first event for a missing topic raises UnknownTopicError within seconds; nothing is queued."""
    publisher = _publisher(bus_settings.kafka_bootstrap, registry, bus_settings.topic_prefix)
    event = next(LocalGovSimulator(seed=1).events(1))
    topic = bus_settings.topic_prefix + TOPIC
    started = time.monotonic()
    with pytest.raises(UnknownTopicError) as raised:
        publisher.publish(event.type, event.data)
    assert time.monotonic() - started < 10
    assert raised.value.topic == topic
    assert str(raised.value) == (
        f"topic {topic!r} does not exist on Kafka at {bus_settings.kafka_bootstrap}; "
        "create the catalog's topics with `govbus topics create`"
    )
    assert publisher.published == 0
    publisher.close()


def test_failed_deliveries_are_summarised_per_topic_and_error_with_a_count(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """Events a topic refuses are reported at close as one sentence per topic and error, with their count."""
    prefix = bus_settings.topic_prefix
    connection = KafkaConnection(bus_settings.kafka_bootstrap)
    # Smaller than any record batch: the broker refuses every resident event.
    ensure_topics(connection, [prefix + TOPIC], config={"max.message.bytes": "64"})
    ensure_topics(connection, [prefix + "localgov.vehicle", prefix + "localgov.family"])
    events = list(simulated_events("localgov", 400, seed=3))
    refused = sum(1 for event in events if event.type.split(".")[-1].startswith("Resident"))
    assert 0 < refused < len(events)  # vehicle and family events arrive
    publisher = _publisher(bus_settings.kafka_bootstrap, registry, prefix)
    for event in events:
        publisher.publish(event.type, event.data)
    with pytest.raises(PublishError) as raised:
        publisher.close()
    summary = f"{refused} events to {prefix}{TOPIC} failed: Broker: Message size too large"
    assert str(raised.value) == summary
    assert publisher.failure_summary() == [summary]
    assert publisher.delivered == len(events) - refused


def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    private_broker: LocalKafka, registry: RegistryClient, unique_name: str
) -> None:
    """Events published while the broker stops and restarts are all delivered, each exactly once."""
    private_broker.up()
    prefix = f"restart{unique_name}."
    ensure_topics(KafkaConnection(private_broker.bootstrap), [prefix + TOPIC])
    publisher = _publisher(private_broker.bootstrap, registry, prefix)
    acknowledged: list[str] = []
    failed: list[str] = []

    def record(event_id: str, error: PublishError | None) -> None:
        (acknowledged if error is None else failed).append(event_id)

    events = list(LocalGovSimulator(seed=31, residents=300).events(6000))
    halfway = threading.Event()

    def publish_all() -> None:
        for index, event in enumerate(events):
            publisher.publish(event.type, event.data, event_id=event.id, on_delivery=record)
            if index == len(events) // 3:
                halfway.set()
            time.sleep(0.0005)
        publisher.flush(120)

    worker = threading.Thread(target=publish_all)
    worker.start()
    assert halfway.wait(60)
    private_broker.down()
    time.sleep(3)
    private_broker.up()
    worker.join(timeout=180)
    assert not worker.is_alive()
    assert failed == []
    assert len(acknowledged) == len(events)
    seen = _event_ids(private_broker.bootstrap, prefix + TOPIC, len(events))
    assert {event_id: seen[event_id] for event_id in acknowledged} == dict.fromkeys(acknowledged, 1)
    assert max(seen.values()) == 1


def test_typed_event_is_published_with_its_classification(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """A typed event published in a with-block arrives decodable, with dataclassification from its schema."""
    from consumers.decoder import EventDecoder
    from producers.events import EVENT_MODELS

    topic = bus_settings.topic_prefix + TOPIC
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [topic])
    event = next(e for e in LocalGovSimulator(seed=5).events(50) if e.type.endswith("ResidentMoved"))
    typed = EVENT_MODELS[event.type].from_avro(event.data)
    with _publisher(bus_settings.kafka_bootstrap, registry, bus_settings.topic_prefix) as publisher:
        event_id = publisher.publish_event(typed, extensions={"legalbasis": "주민등록법 제16조"})
    assert publisher.delivered == 1
    consumer = Consumer(KafkaConnection(bus_settings.kafka_bootstrap).consumer(group_id=f"typed-{topic}"))
    consumer.subscribe([topic])
    message = None
    deadline = time.monotonic() + 30
    while message is None and time.monotonic() < deadline:
        message = consumer.poll(0.5)
    consumer.close()
    assert message is not None
    headers = {name: value.decode() for name, value in message.headers() or [] if value is not None}
    assert headers["ce_id"] == event_id
    assert headers["ce_dataclassification"] == "personal"
    assert headers["ce_legalbasis"] == "주민등록법 제16조"
    decoded = EventDecoder(registry, load_catalog()).decode(message)
    assert EVENT_MODELS[event.type].from_avro(decoded.data) == typed


EXIT_SCRIPT = """
import sys
from bus.kafka_config import KafkaConnection
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator
from producers.simulators.simulation import simulated_events
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient

bootstrap, registry_url, prefix, credential = sys.argv[1:]
registry = RegistryClient(registry_url, credential=credential)
publisher = Publisher(KafkaConnection(bootstrap), registry, load_catalog(),
                      "localgov", "urn:govbus:agency:localgov", prefix)
for event in LocalGovSimulator(seed=8).events(300):
    publisher.publish(event.type, event.data, event_id=event.id)
print(publisher.published)
"""


def test_events_of_a_publisher_nobody_closed_are_flushed_at_exit(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """A process that publishes and exits without close() still delivers every event it queued."""
    import subprocess
    import sys

    topic = bus_settings.topic_prefix + TOPIC
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [topic])
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            EXIT_SCRIPT,
            bus_settings.kafka_bootstrap,
            registry.base_url,
            bus_settings.topic_prefix,
            client_credential(bus_settings) or "",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "300"
    expected = [e.id for e in LocalGovSimulator(seed=8).events(300)]
    assert _event_ids(bus_settings.kafka_bootstrap, topic, 300) == Counter(expected)


class CountingTransport(httpx.BaseTransport):
    """A real HTTP transport that counts the requests going through it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        return self._inner.handle_request(request)


def test_schema_ids_are_looked_up_once_per_event_type(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """Publishing many events of three types asks the registry three times, once per type."""
    ensure_topics(
        KafkaConnection(bus_settings.kafka_bootstrap),
        [bus_settings.topic_prefix + t for t in ("localgov.resident", "localgov.vehicle", "localgov.family")],
    )
    transport = CountingTransport()
    counted = RegistryClient(
        registry.base_url, transport=transport, credential=client_credential(bus_settings)
    )
    events = list(LocalGovSimulator(seed=3).events(400))
    with _publisher(bus_settings.kafka_bootstrap, counted, bus_settings.topic_prefix) as publisher:
        for event in events:
            publisher.publish(event.type, event.data)
    assert publisher.delivered == len(events)
    kinds = {event.type for event in events}
    assert len(kinds) == 3
    assert len(transport.requests) == len(kinds)
    assert all(request.startswith("POST /registry/subjects/") for request in transport.requests)
