"""The gateway's composition root: the registry API, the read-model API and health, in one FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bus.settings import Settings
from consumers.store import open_store
from gateway.problems import install_problem_handlers
from gateway.registry_api import install_registry_errors, registry_router
from gateway.residents_api import residents_router
from schemas.registry import SchemaRegistry
from schemas.registry_log import DEFAULT_TOPIC


def create_app(settings: Settings, registry: SchemaRegistry | None = None) -> FastAPI:
    """Build the app; the registry reads its Kafka topic when the app starts, not at import."""
    # The registry topic takes the topic prefix too: environments sharing a cluster keep their own contracts.
    registry = registry or SchemaRegistry.from_kafka(
        settings.kafka_bootstrap, topic=settings.topic_prefix + DEFAULT_TOPIC
    )
    store = open_store(settings.effective_readmodel_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        registry.start()
        try:
            yield
        finally:
            registry.close()
            store.close()

    app = FastAPI(title="govbus gateway", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    install_registry_errors(app)
    app.include_router(registry_router(registry), prefix="/registry")
    app.include_router(residents_router(store))

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
