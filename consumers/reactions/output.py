"""What a reaction publishes: its agency's catalog events in CloudEvents binary mode, and dead letters.

An emitted event is framed in Confluent wire format with the schema id its catalog subject has in the
registry (looked up once per type when the adapter starts), keyed by its aggregate id, and sent with
``ce_source`` = the agency's identity (``urn:govbus:agency:{agency}``), its deterministic ``ce_id``,
``causationid`` = the event that caused it, ``dataclassification`` = the highest classification of
its type's fields, and ``legalbasis`` when its payload names one. A dead letter keeps the record's
key, value and headers and adds ``govbus_dlq_*`` headers naming the adapter, the record's origin and
the cause. Both go through the caller's transactional producer, inside its open transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import Message, Producer

from bus.errors import ConfigurationError
from consumers.dlq import dead_letter_headers
from consumers.reactions.core import Emission
from schemas.catalog import CLASSIFICATIONS, Catalog, EventType
from schemas.codec import encode
from schemas.envelope import CloudEvent
from schemas.registry_client import RegistryClient

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Route:
    """Where and how one emitted event type is published."""

    topic: str
    key_field: str
    schema_id: int
    parsed: Any
    classification: str


class ReactionOutput:
    """Produces one reaction's events and dead letters into the caller's open transaction."""

    def __init__(
        self,
        adapter: str,
        agency: str,
        registry: RegistryClient,
        catalog: Catalog,
        topic_prefix: str,
        dlq: str,
    ) -> None:
        self._adapter = adapter
        self._agency = agency
        self._registry = registry
        self._catalog = catalog
        self._prefix = topic_prefix
        self._dlq = dlq
        self._source = f"urn:govbus:agency:{agency}"
        self._routes: dict[str, Route] = {}

    def resolve(self, types: frozenset[str]) -> None:
        """Look up each type's topic and schema id; raises when one is not the agency's or unregistered."""
        self._routes = {name: self._route(name) for name in sorted(types)}

    def emit(self, producer: Producer, emission: Emission) -> None:
        """Produce ``emission`` (a type given to :meth:`resolve`)."""
        route = self._routes[emission.type]
        data = dict(emission.data)
        extensions = {"causationid": emission.causation_id, "dataclassification": route.classification}
        if isinstance(data.get("legal_basis"), str):
            extensions["legalbasis"] = data["legal_basis"]
        envelope = CloudEvent(
            source=self._source,
            type=emission.type,
            id=emission.id,
            time=datetime.now(UTC),
            extensions=extensions,
        )
        producer.produce(
            route.topic,
            key=data[route.key_field],
            value=encode(route.schema_id, route.parsed, data),
            headers=envelope.headers(),
        )

    def dead_letter(self, producer: Producer, message: Message, cause: BaseException) -> None:
        """Produce ``message`` unchanged to the dead-letter topic, with where it came from and why."""
        log.warning(
            "reaction.dead_letter",
            adapter=self._adapter,
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            error=type(cause).__name__,
            reason=str(cause),
        )
        headers = dead_letter_headers(self._adapter, message, cause)
        producer.produce(self._dlq, key=message.key(), value=message.value(), headers=headers)

    def _route(self, full_name: str) -> Route:
        kind = self._catalog.get(full_name)
        if kind.agency != self._agency:
            raise ConfigurationError(f"{self._adapter} may not publish {kind.full_name} to {kind.topic!r}")
        return Route(
            topic=self._prefix + kind.topic,
            key_field=kind.key_field,
            schema_id=self._registry.lookup(kind.subject, kind.schema_text),
            parsed=kind.parsed,
            classification=highest_classification(kind),
        )


def highest_classification(kind: EventType) -> str:
    """The CloudEvents ``dataclassification`` of an event type: the highest classification of its fields."""
    return max(kind.classifications().values(), key=CLASSIFICATIONS.index)
