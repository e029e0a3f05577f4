"""Turns Kafka records into :class:`DecodedEvent`.

The CloudEvents headers give the type, the wire-format header the writer schema id; the body is
resolved from the writer schema (fetched once per id) to the catalog's reader schema.
"""

from __future__ import annotations

import json
from typing import Any

import fastavro
from confluent_kafka import Message

from bus.errors import RegistryError, SerializationError
from consumers.events import DecodedEvent
from schemas.catalog import Catalog
from schemas.codec import decode_body, decode_header
from schemas.envelope import CloudEvent
from schemas.registry_client import RegistryClient


class EventDecoder:
    """Decodes wire-format values, resolving each writer schema to the catalog's reader schema."""

    def __init__(self, registry: RegistryClient, catalog: Catalog) -> None:
        self._registry = registry
        self._catalog = catalog
        self._writers: dict[int, Any] = {}

    def decode(self, message: Message) -> DecodedEvent:
        """Decode one record; raises SerializationError for anything that is not a valid govbus event."""
        value = message.value()
        if value is None:
            raise SerializationError("record has no value")
        try:
            envelope = CloudEvent.from_headers(message.headers())
        except ValueError as exc:
            raise SerializationError(str(exc)) from exc
        schema_id, body = decode_header(value)
        writer = self._writer(schema_id)
        reader = self._catalog.get(envelope.type).parsed
        data = decode_body(body, writer, reader)
        if not isinstance(data, dict):
            raise SerializationError(f"{envelope.type}: expected a record, got {type(data).__name__}")
        return DecodedEvent(
            type=envelope.type,
            id=envelope.id,
            source=envelope.source,
            time=envelope.time,
            data=data,
            topic=str(message.topic()),
            partition=int(message.partition() or 0),
            offset=int(message.offset() or 0),
        )

    def _writer(self, schema_id: int) -> Any:
        writer = self._writers.get(schema_id)
        if writer is None:
            try:
                text = self._registry.schema_text(schema_id)
            except RegistryError as exc:
                if exc.status == 404:
                    raise SerializationError(f"schema id {schema_id} is unknown to the registry") from exc
                raise
            writer = fastavro.parse_schema(json.loads(text), _write_hint=False)
            self._writers[schema_id] = writer
        return writer
