"""``POST /v1/events`` through a real gateway and Kafka: all-or-nothing batches, roles, idempotency."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Message
from structlog.testing import capture_logs

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from govbus.bootstrap import agency_source
from govbus.topics import create_bus_topics
from producers.simulators.localgov import LocalGovSimulator
from schemas.registry_client import RegistryClient
from tests.support import bearer, dev_identities

pytestmark = pytest.mark.integration
RESIDENT_TOPIC = "localgov.resident"


def _json(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def simulated(count: int, seed: int = 5) -> list[dict[str, Any]]:
    """Local-government events as the publish API takes them."""
    events = LocalGovSimulator(seed=seed).events(count)
    return json.loads(json.dumps([{"type": e.type, "data": e.data} for e in events], default=_json))


def read_committed(bootstrap: str, topic: str) -> list[Message]:
    """Every committed record of ``topic`` (read to the end of each partition)."""
    consumer = Consumer(
        KafkaConnection(bootstrap).consumer(
            group_id=f"publish-check-{time.monotonic_ns()}", **{"enable.partition.eof": True}
        )
    )
    consumer.subscribe([topic])
    records: list[Message] = []
    ended: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(message.partition())
                    assignment = consumer.assignment()
                    if assignment and ended >= {tp.partition for tp in assignment}:
                        return records
                continue
            ended.discard(message.partition())
            records.append(message)
    finally:
        consumer.close()
    raise AssertionError(f"did not reach the end of {topic}")


def headers_of(message: Message) -> dict[str, str]:
    """A record's headers as text."""
    return {k: v.decode() for k, v in (message.headers() or []) if v is not None}


@pytest.fixture
def api(bus_settings: Settings, gateway_url: str, registry: RegistryClient) -> tuple[str, dict[str, str]]:
    """The gateway's base URL with the catalog registered and its topics created, and the credentials."""
    create_bus_topics(bus_settings)
    _, credentials = dev_identities(bus_settings.home)
    return gateway_url, credentials


def _post(base: str, credential: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/events",
        content=json.dumps(body),
        headers={**bearer(credential), "content-type": "application/json", **headers},
        timeout=60,
    )


def test_a_batch_is_published_with_the_sdk_envelope_and_the_callers_source(
    api: tuple[str, dict[str, str]], bus_settings: Settings
) -> None:
    """202 with the ids once committed; every record has the CloudEvents headers, ce_source the agency's."""
    base, credentials = api
    events = simulated(20)
    answer = _post(base, credentials["localgov"], {"events": events})
    assert answer.status_code == 202, answer.text
    ids = answer.json()["ids"]
    assert len(ids) == len(set(ids)) == 20
    records = [
        r
        for topic in ("localgov.resident", "localgov.vehicle", "localgov.family")
        for r in read_committed(bus_settings.kafka_bootstrap, bus_settings.topic_prefix + topic)
    ]
    assert sorted(headers_of(r)["ce_id"] for r in records) == sorted(ids)
    for record in records:
        headers = headers_of(record)
        assert headers["ce_source"] == agency_source("localgov")
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_type"].startswith("govbus.localgov.")
        assert record.value()[:1] == b"\x00"


def test_a_batch_with_one_bad_item_publishes_nothing_and_names_it(
    api: tuple[str, dict[str, str]], bus_settings: Settings
) -> None:
    """One event that does not fit its schema: 422 naming events[7] and why; the topic stays empty."""
    base, credentials = api
    events = simulated(10)
    del events[7]["data"][next(iter(events[7]["data"]))]
    answer = _post(base, credentials["localgov"], {"events": events})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "events[7]" in answer.json()["detail"]
    assert read_committed(bus_settings.kafka_bootstrap, bus_settings.topic_prefix + RESIDENT_TOPIC) == []


def test_an_agency_publishing_another_agencys_type_gets_403_naming_it(
    api: tuple[str, dict[str, str]], bus_settings: Settings
) -> None:
    """Finance sending a local-government event: 403 naming the type; a ministry may not publish at all."""
    base, credentials = api
    events = simulated(3)
    answer = _post(base, credentials["finance"], {"events": events})
    assert answer.status_code == 403, answer.text
    assert events[0]["type"] in answer.json()["detail"]
    ministry = _post(base, credentials["ministry-of-welfare"], events[0])
    assert ministry.status_code == 403
    assert read_committed(bus_settings.kafka_bootstrap, bus_settings.topic_prefix + RESIDENT_TOPIC) == []


def test_the_same_idempotency_key_twice_publishes_once(
    api: tuple[str, dict[str, str]], bus_settings: Settings
) -> None:
    """A repeated request returns the first answer (marked replayed); another body under the key is 422."""
    base, credentials = api
    events = [e for e in simulated(30) if e["type"].endswith("ResidentRegistered")][:5]
    first = _post(base, credentials["localgov"], {"events": events}, **{"Idempotency-Key": "order-1"})
    second = _post(base, credentials["localgov"], {"events": events}, **{"Idempotency-Key": "order-1"})
    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    other = _post(base, credentials["localgov"], {"events": events[:1]}, **{"Idempotency-Key": "order-1"})
    assert other.status_code == 422
    records = read_committed(bus_settings.kafka_bootstrap, bus_settings.topic_prefix + RESIDENT_TOPIC)
    assert sorted(headers_of(r)["ce_id"] for r in records) == sorted(first.json()["ids"])


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("not JSON", b"{", {}, 422),
    ("not UTF-8", b'{"type": "\xff"}', {}, 422),
    (
        "a lone surrogate",
        b'{"type": "govbus.localgov.ResidentMoved", "data": {"resident_id": "\\ud800"}}',
        {},
        422,
    ),
    ("NaN", b'{"type": "x", "data": {"a": NaN}}', {}, 422),
    ("1e999", b'{"type": "x", "data": {"a": 1e999}}', {}, 422),
    ("5,000 digits", b'{"type": "x", "data": {"a": ' + b"9" * 5000 + b"}}", {}, 422),
    ("nested 1,000 deep", b'{"type": "x", "data": ' + b"[" * 1000 + b"]" * 1000 + b"}", {}, 422),
    ("an array", b"[]", {}, 422),
    ("wrong types", b'{"type": 5, "data": "x"}', {}, 422),
    ("an empty batch", b'{"events": []}', {}, 422),
    ("an unknown type", b'{"type": "govbus.nothing.Here", "data": {}}', {}, 422),
    ("an unknown member", b'{"type": "x", "data": {}, "source": "urn:other"}', {}, 422),
    ("a superscript two", '{"type": "\u00b2", "data": {}}'.encode(), {}, 422),
    ("text/plain", b"{}", {"content-type": "text/plain"}, 415),
    ("too large", b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}", {}, 413),
    ("a bad Idempotency-Key", b"{}", {"Idempotency-Key": ""}, 422),
]


@pytest.mark.parametrize(("name", "body", "extra", "status"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_input_gets_a_problem_and_the_next_request_is_published(
    api: tuple[str, dict[str, str]], name: str, body: bytes, extra: dict[str, str], status: int
) -> None:
    """Each malformed body answers its 4xx problem+json, and a valid event right after is accepted."""
    base, credentials = api
    headers = {**bearer(credentials["localgov"]), "content-type": "application/json", **extra}
    answer = httpx.post(f"{base}/v1/events", content=body, headers=headers, timeout=60)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    good = _post(base, credentials["localgov"], simulated(1)[0])
    assert good.status_code == 202, good.text


def _published(answer: httpx.Response) -> bool:
    return answer.status_code == 503 and answer.json().get("outcome") == "published"


def test_with_kafka_down_the_answer_is_503_and_nothing_is_half_published(
    private_broker: Any, tmp_path: Any
) -> None:
    """With the broker stopped a batch answers 503 with the reason; none of it shows up later, in part."""
    from gateway.server import serve_in_thread
    from govbus.bootstrap import build_gateway, build_registry_client
    from schemas.catalog import load_catalog
    from schemas.catalog_sync import register_catalog

    private_broker.up()
    home = tmp_path / "home"
    _, credentials = dev_identities(home)
    settings = Settings(kafka_bootstrap=private_broker.bootstrap, home=home)
    create_bus_topics(settings)
    with capture_logs(), serve_in_thread(build_gateway(settings)) as base:
        registry = build_registry_client(settings.model_copy(update={"registry_url": f"{base}/registry"}))
        register_catalog(registry, load_catalog())
        registry.close()
        events = [e for e in simulated(30, seed=9) if e["type"].endswith("ResidentRegistered")][:10]
        assert _post(base, credentials["localgov"], {"events": events[:5]}).status_code == 202
        private_broker.down()
        down = _post(base, credentials["localgov"], {"events": events[5:]})
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["outcome"] in ("not published", "unknown")
        private_broker.up()
        deadline = time.monotonic() + 90
        while True:
            again = _post(base, credentials["localgov"], {"events": events[5:]})
            # 503 "published": committed, but the audit log (recovering too) could not record it yet.
            if again.status_code == 202 or _published(again) or time.monotonic() > deadline:
                break
        assert again.status_code == 202 or _published(again), again.text
        records = read_committed(private_broker.bootstrap, RESIDENT_TOPIC)
    ids = [headers_of(r)["ce_id"] for r in records]
    assert len(ids) == 10 or (down.json()["outcome"] == "unknown" and len(ids) == 15)
