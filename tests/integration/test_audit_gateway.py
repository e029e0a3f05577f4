"""The audit through a real gateway and Kafka: publishes and registry writes recorded, the subject view's
roles, read-your-writes, and 503 with no data when the audit record cannot be written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka.admin import AdminClient

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from gateway.audit.chain import ChainVerifier, parse_records
from gateway.audit.topic import audit_topic, read_all, reader
from gateway.identities import FILE_NAME, IdentityFile, Role, new_credential
from govbus.topics import create_bus_topics
from schemas.registry_client import RegistryClient
from tests.integration.test_publish_api import simulated
from tests.support import bearer, dev_identities

pytestmark = pytest.mark.integration
RESIDENT = "R000500000001"  # the first resident the localgov simulator registers with seed 5
OTHER_RESIDENT = "R000500000002"


@pytest.fixture
def people(bus_settings: Settings) -> dict[str, str]:
    """KEY:SECRET of the development organisations plus an auditor and two residents (made before the
    gateway starts)."""
    _, credentials = dev_identities(bus_settings.home)
    with IdentityFile(bus_settings.home / FILE_NAME).changing() as stored:
        for name, role in (
            ("national-audit-office", Role.AUDITOR),
            (RESIDENT, Role.RESIDENT),
            (OTHER_RESIDENT, Role.RESIDENT),
        ):
            credential, text = new_credential(name, role)
            stored.append(credential)
            credentials[name] = text
    return credentials


@pytest.fixture
def api(people: dict[str, str], bus_settings: Settings, gateway_url: str, registry: RegistryClient) -> str:
    """The gateway's base URL, the catalog registered (audited registry writes) and its topics created."""
    create_bus_topics(bus_settings)
    return gateway_url


def _trail(base: str, credential: str, resident: str = RESIDENT, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{base}/v1/audit/subjects/{resident}", headers=bearer(credential), params=params, timeout=30
    )


def _records(settings: Settings) -> Iterator[dict[str, Any]]:
    consumer = reader(KafkaConnection(settings.kafka_bootstrap))
    try:
        for message in read_all(consumer, audit_topic(settings.topic_prefix)):
            yield from parse_records(message.value())
    finally:
        consumer.close()


def _publish(base: str, credential: str, count: int = 3) -> httpx.Response:
    events = [e for e in simulated(12) if e["type"].endswith("ResidentRegistered")][:count]
    return httpx.post(
        f"{base}/v1/events",
        content=orjson.dumps({"events": events}),
        headers={**bearer(credential), "content-type": "application/json"},
        timeout=60,
    )


def test_a_publish_is_in_the_residents_trail_for_an_auditor_and_the_resident(
    api: str, people: dict[str, str]
) -> None:
    """A published event about a resident shows in their trail to an auditor and to that resident."""
    assert _publish(api, people["localgov"]).status_code == 202
    for who in ("national-audit-office", RESIDENT):
        answer = _trail(api, people[who])
        assert answer.status_code == 200, answer.text
        records = answer.json()["records"]
        published = [r for r in records if r["action"] == "publish"]
        assert len(published) == 1
        assert published[0]["organisation"] == "localgov"
        assert published[0]["outcome"] == "published"
        assert published[0]["model"].endswith("localgov.resident")
        assert records[-1]["action"] == "audit-read", "the view's own record is the newest, last"
        assert records[-1]["organisation"] == who


def test_another_resident_and_a_ministry_get_403(api: str, people: dict[str, str]) -> None:
    """Only an auditor and the bound resident may see a trail: 403 problem+json for the others."""
    for who in (OTHER_RESIDENT, "ministry-of-welfare", "localgov"):
        answer = _trail(api, people[who])
        assert answer.status_code == 403, (who, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert "records" not in answer.json()


def test_a_malformed_resident_id_is_a_problem_not_a_500(api: str, people: dict[str, str]) -> None:
    """A resident id that is not R and 12 digits, or a bad limit, answers 422 problem+json."""
    for resident, params in (("R123", {}), ("r000500000001", {}), (RESIDENT, {"limit": "0"})):
        answer = _trail(api, people["national-audit-office"], resident, **params)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"


def test_the_residents_own_lookups_appear_in_the_next_answer(api: str, people: dict[str, str]) -> None:
    """Each lookup by the resident is audited before it answers and is in every later answer, never hidden."""
    counts = []
    for _ in range(3):
        answer = _trail(api, people[RESIDENT])
        assert answer.status_code == 200, answer.text
        own = [r for r in answer.json()["records"] if r["action"] == "audit-read"]
        assert all(r["organisation"] == RESIDENT and r["role"] == "resident" for r in own)
        counts.append(len(own))
    assert counts == [1, 2, 3]


def test_pages_go_back_with_the_previous_cursor(api: str, people: dict[str, str]) -> None:
    """limit=2 gives the two newest records, newest last; `previous` gives the ones before them."""
    for _ in range(4):
        assert _trail(api, people["national-audit-office"]).status_code == 200
    last = _trail(api, people["national-audit-office"], limit=2).json()
    assert len(last["records"]) == 2
    assert last["previous"] == 3
    older = _trail(api, people["national-audit-office"], limit=2, before=last["previous"]).json()
    assert [r["seq"] for r in older["records"]] < [r["seq"] for r in last["records"]]


def test_publishes_and_registry_writes_form_a_valid_chain(
    api: str, people: dict[str, str], bus_settings: Settings
) -> None:
    """The catalog registration (registry writes) and a publish are recorded, and the chain verifies."""
    assert _publish(api, people["localgov"]).status_code == 202
    refused = httpx.put(
        f"{api}/registry/config/some-subject",
        json={"compatibility": "FULL"},
        headers=bearer(people["ministry-of-welfare"]),
        timeout=30,
    )
    assert refused.status_code == 403
    records = list(_records(bus_settings))
    writes = [r for r in records if r["action"] == "registry-write"]
    assert writes, "registering the catalog was not audited"
    assert {r["outcome"] for r in writes} >= {"registered", "refused"}
    assert all(r["organisation"] == "integration" for r in writes if r["outcome"] == "registered")
    assert any(r["model"] == "some-subject" and r["organisation"] == "ministry-of-welfare" for r in writes)
    publishes = [r for r in records if r["action"] == "publish"]
    assert len(publishes) == 1
    assert len(publishes[0]["keys"]) == 3
    assert publishes[0]["credential"] == people["localgov"].split(":")[0]
    assert all(people["localgov"].split(":")[1] not in str(r) for r in records), "a secret was recorded"
    verifier = ChainVerifier()
    for offset, record in enumerate(records):
        verifier.feed(record["writer"].encode(), orjson.dumps(record), 0, offset)
    assert verifier.broken is None


def test_without_a_writable_audit_topic_the_view_and_publish_answer_503(
    api: str, people: dict[str, str], bus_settings: Settings
) -> None:
    """With the audit topic deleted the subject view answers 503 with no data, and a publish whose events
    were committed answers 503 saying they were published, with their ids."""
    assert _trail(api, people[RESIDENT]).status_code == 200
    admin = AdminClient({"bootstrap.servers": bus_settings.kafka_bootstrap})
    admin.delete_topics([audit_topic(bus_settings.topic_prefix)])[
        audit_topic(bus_settings.topic_prefix)
    ].result(30)
    deadline = time.monotonic() + 60
    while True:
        answer = _trail(api, people[RESIDENT])
        if answer.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "records" not in answer.json()
    published = _publish(api, people["localgov"])
    assert published.status_code == 503, published.text
    body = published.json()
    assert body["outcome"] == "published"
    assert len(body["ids"]) == 3
