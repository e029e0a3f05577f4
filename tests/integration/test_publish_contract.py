"""``POST /v1/events`` keeps its OpenAPI contract under schemathesis, through a real gateway and Kafka."""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from bus.credentials import client_credential
from bus.settings import Settings
from govbus.topics import create_bus_topics
from schemas.registry_client import RegistryClient
from tests.e2e.test_openapi_contract import _run

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
OPERATION = "POST /v1/events"


def test_the_publish_api_keeps_its_openapi_contract(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """Generated events and batches, valid and invalid, answer no 5xx and only what the document declares."""
    create_bus_topics(bus_settings)
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json", timeout=30)
    operations = [
        r.ok() for r in schema.get_all_operations() if isinstance(r, Ok) and r.ok().label == OPERATION
    ]
    assert len(operations) == 1, f"{OPERATION} is not in the OpenAPI document"
    headers = {"Authorization": f"Bearer {client_credential(bus_settings, 'localgov')}"}
    failures = [
        failure
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := _run(operations[0], mode, headers)) is not None
    ]
    assert not failures, "\n\n".join(failures)
