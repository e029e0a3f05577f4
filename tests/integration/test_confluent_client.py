"""confluent-kafka's own Schema Registry client, Avro serializer and deserializer against govbus's registry.

Everything goes over HTTP to a real gateway (``/registry``) whose registry is stored in real Kafka, and
the records travel through a real topic: nothing is mocked.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, DeserializingConsumer, SerializingProducer
from confluent_kafka.error import ValueSerializationError
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    SchemaRegistryError,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import (
    MessageField,
    SerializationContext,
    StringDeserializer,
    StringSerializer,
)

from bus.credentials import client_credential
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from producers.simulators.localgov import LocalGovSimulator
from schemas.catalog import EventType, load_catalog
from schemas.catalog_sync import register_catalog
from schemas.registry_client import RegistryClient

pytestmark = pytest.mark.integration

EVENT = "govbus.localgov.ResidentMoved"
RECORDS = 5
CONSUME_TIMEOUT_S = 20.0


@pytest.fixture
def event() -> EventType:
    """The catalog event the records are."""
    return load_catalog().get(EVENT)


@pytest.fixture
def sr(gateway_url: str, bus_settings: Settings) -> Iterator[SchemaRegistryClient]:
    """confluent-kafka's SchemaRegistryClient on the test gateway's registry."""
    client = SchemaRegistryClient(
        {"url": f"{gateway_url}/registry", "basic.auth.user.info": client_credential(bus_settings)}
    )
    yield client
    client.close()


@pytest.fixture
def govbus(gateway_url: str, bus_settings: Settings) -> Iterator[RegistryClient]:
    """govbus's own registry client on the same registry."""
    client = RegistryClient(f"{gateway_url}/registry", credential=client_credential(bus_settings))
    yield client
    client.close()


@pytest.fixture
def topic(bus_settings: Settings, event: EventType) -> str:
    """The event's topic under this test's prefix, created with one partition so order is kept."""
    name = bus_settings.topic_prefix + event.topic
    ensure_topics(KafkaConnection(bus_settings.kafka_bootstrap), [name], partitions=1)
    return name


def _payloads(count: int = RECORDS) -> list[dict[str, Any]]:
    found = [e.data for e in LocalGovSimulator(seed=1).events(300) if e.type == EVENT][:count]
    assert len(found) == count
    return found


def _strategy() -> dict[str, Any]:
    return {"subject.name.strategy": topic_record_subject_name_strategy}


def _produce(bootstrap: str, topic: str, serializer: AvroSerializer, records: list[dict[str, Any]]) -> None:
    producer = SerializingProducer(
        {"bootstrap.servers": bootstrap, "key.serializer": StringSerializer(), "value.serializer": serializer}
    )
    for record in records:
        producer.produce(topic, key=record["resident_id"], value=record)
    assert producer.flush(30) == 0


def _consume_raw(bootstrap: str, topic: str, count: int) -> list[tuple[str, bytes]]:
    """(key, value bytes) of the first ``count`` records of ``topic``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"verify-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    found: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            found.append((message.key().decode(), message.value()))
    finally:
        consumer.close()
    assert len(found) == count, f"only {len(found)} of {count} records arrived"
    return found


def _consume_deserialized(
    bootstrap: str, topic: str, deserializer: AvroDeserializer, count: int
) -> list[tuple[str, Any]]:
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"verify-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "key.deserializer": StringDeserializer(),
            "value.deserializer": deserializer,
        }
    )
    consumer.subscribe([topic])
    found: list[tuple[str, Any]] = []
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            found.append((message.key(), message.value()))
    finally:
        consumer.close()
    assert len(found) == count, f"only {len(found)} of {count} records arrived"
    return found


def _framed_id(value: bytes) -> int:
    """The schema id in Confluent's wire format: magic byte 0, then a big-endian int32."""
    assert value[0] == 0
    return int(struct.unpack(">i", value[1:5])[0])


def _evolved(event: EventType, field: dict[str, Any]) -> str:
    schema = json.loads(event.schema_text)
    schema["fields"] = [*schema["fields"], field]
    return json.dumps(schema)


def test_auto_registered_records_round_trip(
    sr: SchemaRegistryClient, govbus: RegistryClient, bus_settings: Settings, topic: str, event: EventType
) -> None:
    """AvroSerializer auto-registers the catalog schema and AvroDeserializer reads the records back equal."""
    records = _payloads()
    serializer = AvroSerializer(sr, event.schema_text, conf=_strategy())
    _produce(bus_settings.kafka_bootstrap, topic, serializer, records)

    subject = f"{topic}-{event.full_name}"
    assert sr.get_subjects() == [subject]
    schema_id = govbus.lookup(subject, event.schema_text)

    deserializer = AvroDeserializer(sr)
    raw = _consume_raw(bus_settings.kafka_bootstrap, topic, len(records))
    decoded = [deserializer(value, SerializationContext(topic, MessageField.VALUE)) for _, value in raw]
    assert decoded == records
    assert [key for key, _ in raw] == [r["resident_id"] for r in records]
    assert {_framed_id(value) for _, value in raw} == {schema_id}


def test_latest_version_serializer_uses_the_registered_catalog_schema(
    sr: SchemaRegistryClient, govbus: RegistryClient, bus_settings: Settings, topic: str, event: EventType
) -> None:
    """With auto-register off and use.latest.version on, records are framed with the catalog schema's id."""
    catalog_ids = {r.subject: r.schema_id for r in register_catalog(govbus, load_catalog())}
    subject = f"{topic}-{event.full_name}"
    schema_id = govbus.register(subject, event.schema_text)
    # The same schema under the catalog subject and under the prefixed topic's subject: one id.
    assert schema_id == catalog_ids[event.subject]

    records = _payloads()
    conf = {**_strategy(), "auto.register.schemas": False, "use.latest.version": True}
    _produce(bus_settings.kafka_bootstrap, topic, AvroSerializer(sr, event.schema_text, conf=conf), records)

    received = _consume_deserialized(bus_settings.kafka_bootstrap, topic, AvroDeserializer(sr), len(records))
    assert received == [(r["resident_id"], r) for r in records]
    raw = _consume_raw(bus_settings.kafka_bootstrap, topic, len(records))
    assert {_framed_id(value) for _, value in raw} == {schema_id}
    # Nothing was registered by the serializer: the subject still has only the version govbus made.
    assert sr.get_versions(subject) == [1]


def test_lookup_serializer_refuses_an_unregistered_subject(
    sr: SchemaRegistryClient, bus_settings: Settings, topic: str, event: EventType
) -> None:
    """With auto-register off and no registered schema, serializing fails with the registry's 40401."""
    conf = {**_strategy(), "auto.register.schemas": False}
    serializer = AvroSerializer(sr, event.schema_text, conf=conf)
    with pytest.raises(SchemaRegistryError) as caught:
        serializer(_payloads(1)[0], SerializationContext(topic, MessageField.VALUE))
    assert (caught.value.http_status_code, caught.value.error_code) == (404, 40401)
    producer = SerializingProducer(
        {"bootstrap.servers": bus_settings.kafka_bootstrap, "value.serializer": serializer}
    )
    with pytest.raises(ValueSerializationError):
        producer.produce(topic, value=_payloads(1)[0])
    assert sr.get_subjects() == []


def test_client_api_agrees_with_govbus_client(
    sr: SchemaRegistryClient, govbus: RegistryClient, event: EventType, unique_name: str
) -> None:
    """Versions, lookups, subjects, configs, compatibility tests and deletes through the stock client."""
    subject = f"c{unique_name}.resident-{event.full_name}"
    schema_id = sr.register_schema(subject, Schema(event.schema_text, "AVRO"))
    assert govbus.register(subject, event.schema_text) == schema_id

    latest = sr.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 1, schema_id)
    assert latest.schema.schema_str == govbus.latest(subject)["schema"]
    assert json.loads(latest.schema.schema_str)["name"] == event.name
    first = sr.get_version(subject, 1)
    assert (first.subject, first.version, first.schema_id) == (subject, 1, schema_id)
    assert sr.get_subjects() == govbus.subjects() == [subject]
    other = f"d{unique_name}-{event.full_name}"
    assert sr.register_schema(other, Schema(event.schema_text, "AVRO")) == schema_id
    assert sr.get_subjects() == sorted([subject, other])
    assert sr.get_subjects(subject_prefix=f"c{unique_name}") == [subject]
    assert sorted(sr.get_subjects_by_schema_id(schema_id)) == sorted([subject, other])
    assert sr.delete_subject(other) == [1]
    assert sr.delete_subject(other, permanent=True) == [1]

    found = sr.lookup_schema(subject, Schema(event.schema_text, "AVRO"))
    assert (found.schema_id, found.version) == (schema_id, 1)
    sr.clear_caches()  # both clients cached the text they registered; ask the registry itself
    assert sr.get_schema(schema_id).schema_str == latest.schema.schema_str
    assert sr.get_schema_versions(schema_id)[0].subject == subject

    assert sr.get_compatibility() == "BACKWARD"
    assert sr.set_compatibility(subject, "full") == {"compatibility": "FULL"}
    assert sr.get_compatibility(subject) == "FULL"
    assert sr.get_compatibility() == "BACKWARD"
    optional = _evolved(event, {"name": "note", "type": ["null", "string"], "default": None})
    required = _evolved(event, {"name": "note", "type": "string"})
    assert sr.test_compatibility(subject, Schema(optional, "AVRO")) is True
    assert sr.test_compatibility(subject, Schema(required, "AVRO")) is False
    assert govbus.test_compatibility(subject, required)[0] is False

    second_id = sr.register_schema(subject, Schema(optional, "AVRO"))
    assert second_id > schema_id
    assert govbus.lookup(subject, optional) == second_id
    assert sr.get_versions(subject) == govbus.versions(subject) == [1, 2]
    assert sr.get_latest_version(subject).schema_id == second_id
    with pytest.raises(SchemaRegistryError) as refused:
        sr.register_schema(subject, Schema(required, "AVRO"))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)

    assert sr.delete_version(subject, 2) == 2
    assert sr.get_versions(subject) == [1]
    assert sr.get_versions(subject, deleted=True) == [1, 2]
    assert sr.delete_version(subject, 2, permanent=True) == 2
    assert sr.get_versions(subject, deleted=True) == [1]

    assert sr.delete_subject(subject) == [1]
    assert sr.get_subjects() == []
    assert sr.get_subjects(deleted=True) == [subject]
    assert sr.delete_subject(subject, permanent=True) == [1]
    assert sr.get_subjects(deleted=True) == []
    with pytest.raises(SchemaRegistryError) as gone:
        sr.get_version(subject, 1)
    assert (gone.value.http_status_code, gone.value.error_code) == (404, 40401)
    # The subject-level config went with the subject.
    with pytest.raises(SchemaRegistryError) as unset:
        sr.get_compatibility(subject)
    assert unset.value.error_code == 40408
