"""The registry conformance cases through the gateway's /registry HTTP API, stored in real Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support import bearer, dev_identities
from tests.unit.test_registry_conformance import RegistryConformance

pytestmark = pytest.mark.integration


class TestRegistryConformanceOnKafka(RegistryConformance):
    """The conformance cases on a gateway whose registry is stored in a Kafka topic of its own."""

    @pytest.fixture(scope="class")
    @classmethod
    def registry(
        cls, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[httpx.Client]:
        """An HTTP client on one gateway (its registry on a topic of its own) for the whole class."""
        from bus.settings import Settings
        from gateway.server import serve_in_thread
        from govbus.bootstrap import build_gateway
        from schemas.registry.service import SchemaRegistry

        home = tmp_path_factory.mktemp("registry")
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap, readmodel_url=f"sqlite:///{home / 'rm.sqlite'}", home=home
        )
        _, credentials = dev_identities(home)
        registry = SchemaRegistry.from_kafka(kafka_bootstrap, topic=f"_schemas-{uuid.uuid4().hex[:10]}")
        with (
            serve_in_thread(build_gateway(settings, registry)) as base,
            httpx.Client(
                base_url=f"{base}/registry", timeout=30, headers=bearer(credentials["integration"])
            ) as client,
        ):
            yield client
