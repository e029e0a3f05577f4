"""The transactional outbox: an agency stores its event in its own database, in its business transaction.

``Outbox(catalog, agency).add(connection, event_type, payload)`` checks the payload against the catalog
schema exactly as the publisher does (raising :class:`~bus.errors.SerializationError` before anything
is stored) and INSERTs one row into ``govbus_outbox`` on the caller's connection, inside the caller's
open transaction: the event exists if and only if the business write commits. The relay
(:mod:`producers.outbox_relay`, ``govbus outbox relay``) ships the rows to Kafka later.

The table (:func:`ensure_schema`; :mod:`producers.outbox_store` holds the per-database SQL):

==================  ===============================================================================
seq                 monotonically increasing primary key; the shipping order
event_id            the CloudEvents id, unique; a row shipped twice is the same event to consumers
event_type          the record's full name (``ce_type``)
schema_fingerprint  CRC-64-AVRO of the writer schema's canonical form (see ``govbus_outbox_schema``)
payload             the Avro JSON encoding: text a person can inspect in the database (non-ASCII as
                    ``\\u`` escapes), in which dates, decimals and unions round-trip exactly
occurred_at         the CloudEvents time (``ce_time``)
extensions          a JSON object of CloudEvents extensions (``correlationid``, ``legalbasis``, ...)
sent_at             NULL until Kafka acknowledged the row; the relay sets it, nothing else reads it
==================  ===============================================================================

``govbus_outbox_schema`` keeps each writer schema by fingerprint, written alongside the first row
that uses it (or up front by :meth:`Outbox.prepare`). A relay whose catalog has moved on reads older
rows with their own schema and resolves them to its current one (Avro schema resolution, which the
catalog's BACKWARD_TRANSITIVE rule guarantees), so the outbox need not be drained before an upgrade.

Ordering: the relay ships by ``seq``. On SQLite the database serialises writers, so ``seq`` order is
commit order. On PostgreSQL identity values are handed out before commit, so two transactions could
commit their rows out of ``seq`` order; ``add`` therefore takes a transaction-scoped advisory lock on
the event's topic and key before it draws ``seq``, which makes ``seq`` order equal commit order for
every aggregate (different aggregates need no order). A transaction that adds events for two
aggregates while another adds them in the opposite order can deadlock; PostgreSQL detects it and
aborts one, which the application retries like any deadlock.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastavro import json_writer, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from bus.errors import PublishError, SchemaNotFoundError, SerializationError
from producers.outbox_store import DbConnection, writer_for
from schemas.catalog import Catalog, EventType
from schemas.envelope import new_event_id

# CloudEvents extension attribute names: lower-case ASCII letters and digits, at most 20 characters.
EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")


def schema_fingerprint(schema: Any) -> str:
    """CRC-64-AVRO of the parsing canonical form, in hex: equal for schemas that differ only in docs."""
    return str(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def encode_payload(parsed_schema: Any, payload: Mapping[str, Any]) -> str:
    """The Avro JSON encoding of one record (no trailing newline)."""
    buffer = io.StringIO()
    json_writer(buffer, parsed_schema, [payload])
    return buffer.getvalue().rstrip("\n")


def ensure_schema(connection: DbConnection) -> None:
    """Create the outbox tables and index when missing (idempotent, safe for concurrent callers).

    Runs in the caller's transaction when one is open (commit it afterwards); otherwise in a
    transaction of its own that it commits.
    """
    writer_for(connection).ensure_schema()


class Outbox:
    """Writes one agency's catalog events into the outbox table of the agency's own database."""

    def __init__(self, catalog: Catalog, agency: str) -> None:
        if not catalog.for_agency(agency):
            raise SchemaNotFoundError(f"the catalog has no event types for agency {agency!r}")
        self._catalog = catalog
        self.agency = agency
        self._fingerprints: dict[str, str] = {}

    def prepare(self, connection: DbConnection) -> None:
        """:func:`ensure_schema`, and store this agency's current writer schemas: call it at start-up.

        Optional: ``add`` stores a schema with its first row anyway. On PostgreSQL, though, writers
        of an event type wait while another transaction's first row of a new schema is uncommitted;
        storing the schemas up front (committed, like ``ensure_schema``) avoids that wait.
        """
        kinds = self._catalog.for_agency(self.agency)
        writer_for(connection).ensure_schema(
            [(self._fingerprint(kind), kind.full_name, kind.schema_text) for kind in kinds]
        )

    def add(
        self,
        connection: DbConnection,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        extensions: Mapping[str, str] | None = None,
    ) -> str:
        """Store one event in the caller's open transaction and return its CloudEvents id.

        Nothing is committed here: the caller commits the event together with its business write.
        Raises PublishError for another agency's event type or an event id already in the outbox,
        and SerializationError for a payload that does not fit its schema (nothing is stored then).
        """
        kind = self._kind(event_type)
        key = payload.get(kind.key_field)
        if not isinstance(key, str) or not key:
            raise SerializationError(
                f"{kind.full_name}: key field {kind.key_field!r} must be a non-empty string"
            )
        try:
            # The binary writer is the publisher's own check, so a stored row always publishes.
            schemaless_writer(io.BytesIO(), kind.parsed, payload)
            encoded = encode_payload(kind.parsed, payload)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise SerializationError(f"{kind.full_name}: payload does not fit the schema: {exc}") from exc
        event_id = event_id or new_event_id()
        moment = time or datetime.now(UTC)
        if moment.tzinfo is None:
            raise SerializationError(f"{kind.full_name}: event time {moment} has no time zone")
        writer = writer_for(connection)
        try:
            writer.insert(
                lock_key=f"{kind.topic}/{key}",
                schema=(self._fingerprint(kind), kind.full_name, kind.schema_text),
                row=(
                    event_id,
                    kind.full_name,
                    self._fingerprint(kind),
                    encoded,
                    moment,
                    _extensions_json(kind, extensions),
                ),
            )
        except writer.integrity_errors as exc:
            raise PublishError(f"event id {event_id!r} is already in the outbox") from exc
        return event_id

    def _kind(self, event_type: str) -> EventType:
        kind = self._catalog.get(event_type)
        if kind.agency != self.agency:
            raise PublishError(f"agency {self.agency!r} may not publish {kind.full_name} to {kind.topic!r}")
        return kind

    def _fingerprint(self, kind: EventType) -> str:
        known = self._fingerprints.get(kind.full_name)
        if known is None:
            known = self._fingerprints[kind.full_name] = schema_fingerprint(kind.parsed)
        return known


def _extensions_json(kind: EventType, extensions: Mapping[str, str] | None) -> str:
    for name, value in (extensions or {}).items():
        if not EXTENSION_NAME.fullmatch(name) or not isinstance(value, str):
            raise SerializationError(
                f"{kind.full_name}: extension {name!r}={value!r} is not a CloudEvents extension "
                "(name: 1-20 lower-case letters or digits; value: a string)"
            )
    return json.dumps(dict(extensions or {}), ensure_ascii=False, sort_keys=True)
