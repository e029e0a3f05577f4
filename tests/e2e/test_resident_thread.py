"""One event from an agency to a ministry: producer → Kafka → consumer → SQLite → gateway over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bus.credentials import client_credential
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from consumers.runtime import ReadModelRunner
from producers.publisher import Publisher
from producers.simulators.localgov import LocalGovSimulator
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient
from tests.support import bearer, residents_adapter, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def consumer(bus_settings: Settings, registry: RegistryClient) -> Iterator[ReadModelRunner]:
    """The residents adapter running in a background thread for the test's duration."""
    with residents_adapter(bus_settings, registry) as runner:
        yield runner


def test_published_moves_reach_the_ministry_through_the_gateway(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient, consumer: ReadModelRunner
) -> None:
    """Every simulated resident is readable at the gateway with the address of their last move."""
    events = list(LocalGovSimulator(seed=11, residents=20).events(150))
    publisher = Publisher(
        KafkaConnection(bus_settings.kafka_bootstrap),
        registry,
        load_catalog(),
        agency="localgov",
        source="urn:govbus:agency:localgov",
        topic_prefix=bus_settings.topic_prefix,
    )
    for event in events:
        publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
    publisher.close()
    assert publisher.delivered == len(events)

    expected: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.type.endswith("Registered"):
            expected[event.data["resident_id"]] = {"address": event.data["address"], "status": "ACTIVE"}
        elif event.type.endswith("Moved"):
            expected[event.data["resident_id"]]["address"] = event.data["new_address"]
        else:
            expected[event.data["resident_id"]]["status"] = "DECEASED"
    wait_for(lambda: consumer.stats.applied == len(events), what="the consumer to apply every event")

    ministry = bearer(client_credential(bus_settings, "ministry-of-welfare") or "")
    with httpx.Client(base_url=gateway_url, headers={**ministry, "Purpose": "benefit-eligibility"}) as http:
        for resident_id, want in expected.items():
            record = http.get(f"/v1/residents/{resident_id}").json()["data"]
            assert record["address"] == want["address"], resident_id
            assert record["status"] == want["status"]
            assert record["registration_number"].endswith("******")


def test_unknown_resident_is_a_404_problem(gateway_url: str, bus_settings: Settings) -> None:
    """Asking for a resident nobody registered answers 404 as problem+json naming the id."""
    ministry = bearer(client_credential(bus_settings, "ministry-of-welfare") or "")
    response = httpx.get(
        f"{gateway_url}/v1/residents/R999999999999", headers={**ministry, "Purpose": "benefit-eligibility"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "R999999999999" in response.json()["detail"]


def test_health_endpoint_answers(gateway_url: str) -> None:
    """GET /healthz answers 200 with status ok."""
    assert httpx.get(f"{gateway_url}/healthz").json() == {"status": "ok"}
