"""Governed sharing through the real gateway and Kafka: agreements decide, the catalog masks, the audit tells.

Local-government events go through the publisher SDK to Kafka, the residents adapter projects them into
SQLite, and the gateway (:func:`govbus.bootstrap.build_gateway`, with the sample agreements of
``deploy/agreements.sample.json``) serves them to ministries, records every access in the audit topic and
streams changes on its feed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from gateway.identities import FILE_NAME, IdentityFile, Role, new_credential
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient
from tests.integration.test_feeds import SseClient
from tests.support import bearer, dev_identities, residents_adapter, wait_for

pytestmark = pytest.mark.integration
WELFARE, EDUCATION = "ministry-of-welfare", "ministry-of-education"


@pytest.fixture
def people(bus_settings: Settings) -> dict[str, str]:
    """KEY:SECRET of the development organisations (made before the gateway starts)."""
    return dev_identities(bus_settings.home)[1]


@pytest.fixture
def resident(
    people: dict[str, str], bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A resident registered through Kafka and projected by the residents adapter: (id, registration)."""
    with residents_adapter(bus_settings, registry) as runner:
        events = [
            e for e in LocalGovSimulator(seed=3, residents=5).events(40) if e.type.endswith("Registered")
        ]
        publisher = _publisher(bus_settings, registry)
        for event in events[:3]:
            publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
        publisher.close()
        wait_for(lambda: runner.stats.applied >= 3, what="the residents adapter to apply the registrations")
        registered = events[0].data
        yield str(registered["resident_id"]), registered


def _publisher(settings: Settings, registry: RegistryClient) -> Publisher:
    return Publisher(
        KafkaConnection(settings.kafka_bootstrap),
        registry,
        load_catalog(),
        agency="localgov",
        source="urn:govbus:agency:localgov",
        topic_prefix=settings.topic_prefix,
    )


def _read(base: str, credential: str, path: str, purpose: str | None) -> httpx.Response:
    headers = bearer(credential) | ({"Purpose": purpose} if purpose is not None else {})
    return httpx.get(f"{base}{path}", headers=headers, timeout=30)


def _resident_credential(settings: Settings, resident_id: str) -> str:
    credential, text = new_credential(resident_id, Role.RESIDENT)
    with IdentityFile(settings.home / FILE_NAME).changing() as stored:
        stored.append(credential)
    return text


def test_agreements_decide_and_the_catalog_masks(
    gateway_url: str, people: dict[str, str], resident: tuple[str, dict[str, Any]]
) -> None:
    """Welfare sees the name it is granted and a masked number; education a masked name; no agreement,
    no purpose and a wrong purpose are 403 with their reasons."""
    resident_id, registered = resident
    path = f"/v1/residents/{resident_id}"

    welfare = _read(gateway_url, people[WELFARE], path, "benefit-eligibility")
    assert welfare.status_code == 200, welfare.text
    record, disclosure = welfare.json()["data"], welfare.json()["disclosure"]
    number = str(registered["registration_number"])
    assert record["name"] == registered["name"]
    assert record["registration_number"] == number[:6] + "-" + number[7] + "******"
    assert record["sex"] is None
    assert record["address"]["road_address"] == registered["address"]["road_address"]
    assert disclosure["agreement"] == "welfare-residents-2026"
    assert disclosure["masked"] == ["registration_number"]
    assert "sex" in disclosure["withheld"]

    education = _read(gateway_url, people[EDUCATION], path, "school-assignment").json()["data"]
    assert education["name"] == registered["name"][0] + "*" * (len(registered["name"]) - 1)
    assert len(education["birth_date"]) == 4
    assert education["address"]["road_address"] == registered["address"]["road_address"]

    agency = _read(gateway_url, people["localgov"], path, "benefit-eligibility")
    assert agency.status_code == 403
    assert "no sharing agreement for 'residents'" in agency.json()["detail"]
    unstated = _read(gateway_url, people[WELFARE], path, None)
    assert unstated.status_code == 403
    assert "Purpose header" in unstated.json()["detail"]
    wrong = _read(gateway_url, people[WELFARE], path, "tax-audit")
    assert wrong.status_code == 403
    assert "allowed: benefit-eligibility, benefit-review" in wrong.json()["detail"]


def test_every_access_appears_in_the_residents_audit_view(
    gateway_url: str, people: dict[str, str], resident: tuple[str, dict[str, Any]], bus_settings: Settings
) -> None:
    """The resident's view lists each read, profile and refusal about them, with purpose and legal basis."""
    resident_id, _ = resident
    own = _resident_credential(bus_settings, resident_id)
    assert _read(
        gateway_url, people[WELFARE], f"/v1/residents/{resident_id}", "benefit-eligibility"
    ).is_success
    profile = _read(
        gateway_url, people[WELFARE], f"/v1/citizen-profiles/{resident_id}", "benefit-eligibility"
    )
    assert profile.status_code == 200, profile.text
    assert profile.json()["data"]["resident_id"] == resident_id
    assert _read(gateway_url, people[WELFARE], f"/v1/residents/{resident_id}", "tax-audit").status_code == 403

    def trail() -> list[dict[str, Any]] | None:
        answer = httpx.get(f"{gateway_url}/v1/audit/subjects/{resident_id}", headers=bearer(own), timeout=30)
        if answer.status_code != 200:  # the new credential is read within a second
            return None
        records: list[dict[str, Any]] = answer.json()["records"]
        return records

    records = wait_for(trail, what="the resident's audit view")
    reads = [r for r in records if r["organisation"] == WELFARE]
    assert [(r["action"], r["model"], r["outcome"]) for r in reads] == [
        ("read", "residents", "disclosed"),
        ("read", "citizen_profile", "disclosed"),
        ("read", "residents", "refused"),
    ]
    assert reads[0]["purpose"] == "benefit-eligibility"
    assert reads[0]["legal_basis"].startswith("National Basic Living Security Act")
    assert "name" in reads[0]["fields"]
    assert "allowed" in reads[2]["detail"]
    again = wait_for(trail, what="the resident's audit view")
    assert any(r["action"] == "audit-read" and r["organisation"] == resident_id for r in again)


def test_the_feed_delivers_a_change_within_a_second_masked_by_the_agreement(
    gateway_url: str,
    people: dict[str, str],
    resident: tuple[str, dict[str, Any]],
    bus_settings: Settings,
    registry: RegistryClient,
) -> None:
    """A registration published after subscribing arrives within a second: number masked, name in clear."""
    headers = bearer(people[WELFARE]) | {"Purpose": "benefit-eligibility"}
    client = SseClient(gateway_url, "/v1/feeds/residents", headers).start()
    try:
        assert client.status == 200
        client.next(10, changes_only=False)  # the opening block: the subscription's cursor
        events = [
            e for e in LocalGovSimulator(seed=4, residents=3).events(30) if e.type.endswith("Registered")
        ]
        publisher = _publisher(bus_settings, registry)
        sent = time.monotonic()
        publisher.publish(events[0].type, events[0].data, event_id=events[0].id, time=events[0].time)
        publisher.flush()
        change = client.next(10).json()
        elapsed = time.monotonic() - sent
        publisher.close()
    finally:
        client.close()
    assert change["id"] == events[0].id
    assert elapsed < 1.0, f"the change took {elapsed:.2f}s"
    assert change["data"]["name"] == events[0].data["name"]
    assert change["data"]["registration_number"].endswith("******")
