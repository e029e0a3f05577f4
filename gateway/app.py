"""The gateway app: the registry API, the read-model API, liveness and readiness, in one FastAPI app.

Its collaborators (the registry, the store) are built by the composition root (``govbus.bootstrap``) and
passed in; the app starts the registry when it starts and closes both when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from consumers.stores import Store
from gateway.health import health_router
from gateway.problems import install_problem_handlers
from gateway.registry_api import install_registry_errors, registry_router
from gateway.residents_api import residents_router
from schemas.registry.service import SchemaRegistry


def create_app(registry: SchemaRegistry, store: Store) -> FastAPI:
    """Build the app; the registry reads its log when the app starts, not here."""

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

    app.include_router(health_router(registry, store))
    return app
