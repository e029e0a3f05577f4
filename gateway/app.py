"""The gateway app: the registry API, the read-model API, liveness and readiness, in one FastAPI app.

Its collaborators (the registry, the store, the identities) are built by the composition root
(``govbus.bootstrap``) and passed in; the app starts the registry when it starts and closes the registry
and the store when it stops. Every route but ``/healthz``, ``/readyz`` and the OpenAPI document needs a
credential (:mod:`gateway.auth`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from consumers.stores import Store
from gateway.audit.api import audit_router
from gateway.audit.entry import AuditLog, Managed
from gateway.audit.trail import AuditTrail
from gateway.auth import Authentication, document_security
from gateway.docs import install_docs
from gateway.feeds import ChangeFeeds
from gateway.health import health_router
from gateway.identities import Identities
from gateway.problems import install_problem_handlers
from gateway.publish_api import PublishFastPath, Publishing, publish_router
from gateway.records_api import RecordsApi, RecordsFastPath, records_router
from gateway.registry_api import SchemaByIdFastPath, install_registry_errors, registry_router
from schemas.registry.service import SchemaRegistry


def create_app(
    registry: SchemaRegistry,
    store: Store,
    identities: Identities,
    publishing: Publishing | None = None,
    records: RecordsApi | None = None,
    *,
    audit: AuditLog | None = None,
    trail: AuditTrail | None = None,
    feeds: ChangeFeeds | None = None,
) -> FastAPI:
    """Build the app; the registry reads its log when the app starts, not here.

    Without ``publishing`` (an app without Kafka, as unit tests build it) there is no publish API;
    without ``records`` no query API (``app.state.records`` holds it, for the benchmark's baseline).
    ``audit`` records publishes and registry writes (and is what ``records`` should record into); with
    ``trail`` too there is the subject view ``/v1/audit/subjects/{id}``. Without ``audit`` nothing is
    audited (unit tests' apps); :func:`govbus.bootstrap.build_gateway` always passes both. A ``Managed``
    audit log or trail is started with the app (before the registry) and closed after the publish API.
    With ``feeds`` there are the change feeds ``/v1/feeds/{model}``, ended first when the app stops.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        managed = [part for part in (audit, trail) if isinstance(part, Managed)]
        for part in managed:
            part.start()
        registry.start()
        try:
            yield
        finally:
            if feeds is not None:
                feeds.close()
            if publishing is not None:
                publishing.close()
            for part in reversed(managed):
                part.close()
            registry.close()
            store.close()

    app = FastAPI(title="govbus gateway", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_docs(app)
    install_problem_handlers(app)
    install_registry_errors(app)
    # The last added runs first: authentication, then the fast paths of the publish API and of the
    # registry's schemas by id.
    app.add_middleware(SchemaByIdFastPath, registry=registry)
    if publishing is not None:
        app.add_middleware(PublishFastPath, publishing=publishing, audit=audit)
    if records is not None:
        app.add_middleware(RecordsFastPath, records=records)
    app.add_middleware(Authentication, identities=identities)
    if publishing is not None:  # first: the busiest route is matched before the registry's many
        app.include_router(publish_router(publishing, audit))
    app.include_router(registry_router(registry, audit), prefix="/registry")
    if records is not None:
        app.state.records = records
        app.include_router(records_router(records))

    if audit is not None and trail is not None:
        app.include_router(audit_router(trail, audit))
    if feeds is not None:
        app.include_router(feeds.router())

    app.include_router(health_router(registry, store))
    document_security(app)
    return app
