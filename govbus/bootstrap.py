"""The composition root: every govbus object that talks to Kafka, the registry or a store is wired here.

Commands, the demo and the README's examples build their objects through these functions from one
:class:`~bus.settings.Settings`, so a setting (a topic prefix, a registry URL, a read-model URL) means the
same thing everywhere. Nothing here opens a connection at import; each function builds what it is asked
for and the caller owns (and closes) the result.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from bus.credentials import INTEGRATION, client_credential
from bus.kafka_config import Config, KafkaConnection
from bus.settings import Settings
from consumers.adapters import build_read_model
from consumers.decoder import EventDecoder
from consumers.reactions import ReactionAdapter, build_reaction
from consumers.runtime import ReadModelRunner
from consumers.stores import Store, open_store
from producers.atomic import AtomicSender
from producers.publisher import Publisher
from schemas.catalog import Catalog, load_catalog
from schemas.registry.log import DEFAULT_TOPIC
from schemas.registry.service import SchemaRegistry
from schemas.registry_client import RegistryClient

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gateway.agreements import Agreements
    from gateway.audit.entry import AuditLog
    from gateway.audit.trail import AuditTrail
    from gateway.audit.writer import KafkaAuditLog
    from gateway.feeds import ChangeFeeds
    from gateway.publish_api import Publishing
    from gateway.records_api import RecordsApi


PUBLISH_SENDERS = 2
"""Transactional senders of a gateway's publish API: transactions it keeps in flight at once.

Two let one sender produce its round while the other waits for its commit. More split the waiting
requests into more, smaller transactions, and each costs the broker the same (the coordinator's log
writes and a marker per partition): with 16 connections posting 100-event batches, 1 or 2 senders gave
355–394 requests/s, 3 gave 304 and 4 gave 270–316, with the broker's CPU per request 0.6, 0.9, 1.5 and
1.8–2.2 ms (2026-12-02, ``bench gateway``'s load against one gateway)."""


def agency_source(agency: str) -> str:
    """The CloudEvents ``source`` an agency publishes under."""
    return f"urn:govbus:agency:{agency}"


def build_connection(settings: Settings, client_id: str, extra: Config | None = None) -> KafkaConnection:
    """The Kafka connection settings of one client, named ``client_id`` in the broker's logs and metrics."""
    return KafkaConnection(settings.kafka_bootstrap, client_id=client_id, extra=extra or {})


def build_registry_client(settings: Settings, organisation: str = INTEGRATION) -> RegistryClient:
    """A client of the schema registry at ``GOVBUS_REGISTRY_URL``, presenting ``GOVBUS_CREDENTIALS`` or
    the development credential of ``organisation`` (:func:`bus.credentials.client_credential`)."""
    return RegistryClient(settings.registry_url, credential=client_credential(settings, organisation))


def build_publisher(
    settings: Settings,
    agency: str,
    *,
    registry: RegistryClient | None = None,
    catalog: Catalog | None = None,
    client_id: str | None = None,
    extra: Config | None = None,
    source: str | None = None,
) -> Publisher:
    """The publisher SDK of ``agency``: its catalog events, its CloudEvents source, the topic prefix.

    Pass ``registry`` (and close it yourself) to share one registry client between publishers; otherwise
    the publisher gets a client of its own, which lives as long as the publisher object.
    """
    return Publisher(
        build_connection(settings, client_id or f"govbus-{agency}", extra),
        registry or build_registry_client(settings, agency),
        catalog or load_catalog(),
        agency=agency,
        source=source or agency_source(agency),
        topic_prefix=settings.topic_prefix,
    )


def build_store(settings: Settings) -> Store:
    """The read-model store at ``GOVBUS_READMODEL_URL``; the default's folder is created when missing."""
    return open_store(settings.effective_readmodel_url, create_folder=not settings.readmodel_url)


def build_runner(
    settings: Settings,
    adapter: str,
    *,
    store: Store | None = None,
    registry: RegistryClient | None = None,
    catalog: Catalog | None = None,
    shadow: bool = False,
) -> ReadModelRunner:
    """The consumer adapter ``adapter`` (a name of ``consumers.adapters.ADAPTERS``) ready to run.

    With ``shadow=True`` it fills the rebuild copies of the model's tables instead of the live ones.
    """
    return ReadModelRunner(
        build_connection(settings, f"govbus-consume-{adapter}"),
        build_read_model(adapter),
        store or build_store(settings),
        EventDecoder(registry or build_registry_client(settings), catalog or load_catalog()),
        topic_prefix=settings.topic_prefix,
        shadow=shadow,
    )


def build_reaction_adapter(
    settings: Settings,
    name: str,
    *,
    registry: RegistryClient | None = None,
    catalog: Catalog | None = None,
) -> ReactionAdapter[Any]:
    """The reaction adapter ``name`` (a name of ``consumers.reactions.REACTIONS``) ready to run.

    Pass ``registry`` (and close it yourself) to share one registry client; otherwise the adapter gets
    a client of its own.
    """
    return build_reaction(
        name,
        build_connection(settings, f"govbus-{name}"),
        registry or build_registry_client(settings),
        catalog or load_catalog(),
        settings.topic_prefix,
    )


def build_registry(settings: Settings, topic: str | None = None) -> SchemaRegistry:
    """The schema registry server on its Kafka topic (``{prefix}_schemas`` unless ``topic`` is given).

    The registry topic takes the topic prefix too: environments sharing a cluster keep their own contracts.
    """
    return SchemaRegistry.from_kafka(
        settings.kafka_bootstrap, topic=topic or settings.topic_prefix + DEFAULT_TOPIC
    )


def build_gateway(settings: Settings, registry: SchemaRegistry | None = None) -> FastAPI:
    """The gateway app with its registry, read-model store and the identities of ``GOVBUS_HOME``; the
    registry, the audit log and the audit trail start with the app. A gateway built here always audits."""
    from gateway.app import create_app  # noqa: PLC0415 - the web stack loads only where a gateway is built
    from gateway.identities import FILE_NAME, Identities  # noqa: PLC0415 - as above

    identities = Identities(settings.home / FILE_NAME)
    registry = registry or build_registry(settings)
    store = build_store(settings)
    audit = build_audit_log(settings)
    records = build_records(settings, store, audit)
    publishing = build_publishing(settings, registry, store)
    feeds = build_feeds(settings, registry, records.agreements, audit)
    trail = build_audit_trail(settings)
    return create_app(registry, store, identities, publishing, records, audit=audit, trail=trail, feeds=feeds)


def build_feeds(
    settings: Settings, registry: SchemaRegistry, agreements: Agreements, audit: AuditLog
) -> ChangeFeeds:
    """The change feeds: records of the models' topics decoded with the gateway's own registry, decided by
    the agreements, audited."""
    from gateway.feeds import ChangeFeeds  # noqa: PLC0415 - web stack only where a gateway is built
    from gateway.publish_api import LocalSchemaIds  # noqa: PLC0415 - as above

    catalog = load_catalog()
    return ChangeFeeds(
        build_connection(settings, "govbus-gateway-feeds"),
        EventDecoder(LocalSchemaIds(registry), catalog),
        agreements,
        audit,
        catalog=catalog,
        topic_prefix=settings.topic_prefix,
    )


def build_audit_log(settings: Settings, topic: str | None = None) -> KafkaAuditLog:
    """The gateway's audit log: its hash chain (writer id ``GOVBUS_AUDIT_WRITER``, default
    ``gateway-<hostname>-<pid>``) on ``{prefix}govbus.audit`` unless ``topic`` is given; started by the
    app."""
    from gateway.audit.topic import audit_topic  # noqa: PLC0415 - web stack only where a gateway is built
    from gateway.audit.writer import KafkaAuditLog  # noqa: PLC0415 - as above

    return KafkaAuditLog(
        build_connection(settings, "govbus-gateway-audit"),
        topic or audit_topic(settings.topic_prefix),
        settings.audit_writer,
    )


def build_audit_trail(settings: Settings, topic: str | None = None) -> AuditTrail:
    """The audit topic indexed by resident id, for ``GET /v1/audit/subjects/{id}``; started by the app."""
    from gateway.audit.topic import audit_topic  # noqa: PLC0415 - web stack only where a gateway is built
    from gateway.audit.trail import AuditTrail  # noqa: PLC0415 - as above

    return AuditTrail(
        build_connection(settings, "govbus-gateway-audit-trail"), topic or audit_topic(settings.topic_prefix)
    )


def build_records(settings: Settings, store: Store, audit: AuditLog | None = None) -> RecordsApi:
    """The query API's state: the store, the agreements of ``GOVBUS_HOME``, the catalog's disclosure
    contracts and the audit log."""
    from gateway.agreements import FILE_NAME, Agreements  # noqa: PLC0415 - web stack only where a gateway is built
    from gateway.disclosure import Disclosures  # noqa: PLC0415 - as above
    from gateway.records_api import RecordsApi  # noqa: PLC0415 - as above

    return RecordsApi(store, Agreements(settings.home / FILE_NAME), Disclosures(load_catalog()), audit)


def build_publishing(settings: Settings, registry: SchemaRegistry, store: Store) -> Publishing:
    """What the gateway's publish API needs: an SDK publisher per catalog agency (checks and encodes
    with the gateway's own registry), :data:`PUBLISH_SENDERS` transactional senders, the idempotency keys
    in ``store``.

    Each sender's ``transactional.id`` is unique per gateway process
    (``{prefix}govbus-gateway-{random}-{n}``): replicas never fence each other, and the transactions serve
    atomicity, not zombie fencing.
    """
    from gateway.idempotency import IdempotencyKeys  # noqa: PLC0415 - web stack only where a gateway is built
    from gateway.publish_api import LocalSchemaIds, Publishing  # noqa: PLC0415 - as above

    catalog = load_catalog()
    ids = LocalSchemaIds(registry)
    publishers = {
        agency: Publisher(
            build_connection(settings, f"govbus-gateway-{agency}"),
            ids,
            catalog,
            agency=agency,
            source=agency_source(agency),
            topic_prefix=settings.topic_prefix,
        )
        for agency in sorted({kind.agency for kind in catalog})
    }
    instance = uuid.uuid4().hex[:12]
    senders = [
        AtomicSender(
            build_connection(settings, f"govbus-gateway-publish-{n}"),
            f"{settings.topic_prefix}govbus-gateway-{instance}-{n}",
        )
        for n in range(PUBLISH_SENDERS)
    ]
    return Publishing(catalog, publishers, senders, IdempotencyKeys(store))
