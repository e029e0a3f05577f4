"""The catalog: every agency event as an ``.avsc`` file under ``schemas/avsc/<topic>/<Record>.avsc``.

The files are the one source of truth for topics, Kafka keys, registry subjects, the classification
of every field and the mask of a personal one (both read by the gateway's masking). Loading validates
the rules every catalog file must follow and raises :class:`~bus.errors.InvalidSchemaError` naming the file
and field that breaks one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import fastavro

from bus.errors import InvalidSchemaError, SchemaNotFoundError
from schemas.avro_types import NAMED, walk
from schemas.masks import MASKS

CATALOG_DIR = Path(__file__).resolve().parent / "avsc"
CLASSIFICATIONS = ("public", "internal", "personal", "sensitive")


@dataclass(frozen=True)
class EventType:
    """One event record of the catalog and where it travels."""

    topic: str
    schema: Mapping[str, Any]
    path: Path
    schema_text: str = field(repr=False)

    @property
    def name(self) -> str:
        """The unqualified record name, e.g. ``ResidentMoved``."""
        return str(self.schema["name"])

    @property
    def full_name(self) -> str:
        """The record's full name, used as the CloudEvents ``ce_type``."""
        return f"{self.schema['namespace']}.{self.schema['name']}"

    @property
    def agency(self) -> str:
        """The publishing agency: the topic's first segment."""
        return self.topic.split(".", 1)[0]

    @property
    def key_field(self) -> str:
        """The top-level field holding the aggregate id, used as the Kafka key."""
        return str(self.schema["key"])

    @property
    def subject(self) -> str:
        """The registry subject (TopicRecordNameStrategy): ``{topic}-{full name}``."""
        return f"{self.topic}-{self.full_name}"

    @cached_property
    def parsed(self) -> dict[str, Any]:
        """The fastavro-parsed schema used to encode and decode."""
        parsed = fastavro.parse_schema(json.loads(self.schema_text))
        return cast(dict[str, Any], parsed)

    def classifications(self) -> dict[str, str]:
        """Dotted field path → classification, for every field at every nesting level."""
        result: dict[str, str] = {}
        for path, fld in _walk_fields(self.schema):
            result[path] = str(fld["classification"])
        return result

    def masks(self) -> dict[str, str]:
        """Dotted field path → the name of its mask (:mod:`schemas.masks`), for the fields that name one."""
        return {path: str(fld["mask"]) for path, fld in _walk_fields(self.schema) if "mask" in fld}

    def docs(self) -> dict[str, str]:
        """Dotted field path → the field's ``doc``, for every field at every nesting level."""
        return {path: str(fld["doc"]) for path, fld in _walk_fields(self.schema)}


@dataclass(frozen=True)
class Catalog:
    """All event types, indexed by full name and by topic."""

    events: tuple[EventType, ...]

    def __iter__(self) -> Iterator[EventType]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def get(self, full_name: str) -> EventType:
        """The event type with that full name (or unqualified name, when unique)."""
        found = self._by_name.get(full_name)
        if found is None:
            raise SchemaNotFoundError(f"no event type {full_name[:200]!r} in the catalog")
        return found

    @cached_property
    def _by_name(self) -> dict[str, EventType]:
        index: dict[str, EventType] = {}
        for event in reversed(self.events):  # the first of several with one unqualified name wins
            index[event.name] = event
        index.update({event.full_name: event for event in self.events})
        return index

    def topics(self) -> list[str]:
        """Every topic, sorted."""
        return sorted({event.topic for event in self.events})

    def for_topic(self, topic: str) -> list[EventType]:
        """The event types that share ``topic``."""
        return [event for event in self.events if event.topic == topic]

    def for_agency(self, agency: str) -> list[EventType]:
        """The event types an agency publishes."""
        return [event for event in self.events if event.agency == agency]


def load_catalog(root: Path = CATALOG_DIR) -> Catalog:
    """Read and validate every ``.avsc`` file below ``root``."""
    events = [_load_event(path) for path in sorted(root.glob("*/*.avsc"))]
    if not events:
        raise InvalidSchemaError(f"no .avsc files under {root}")
    _check_topics(events)
    return Catalog(tuple(events))


def _load_event(path: Path) -> EventType:
    text = path.read_text(encoding="utf-8")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSchemaError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise InvalidSchemaError(f"{path}: a catalog event must be a record schema")
    for attribute in ("namespace", "doc", "key"):
        if attribute not in schema:
            raise InvalidSchemaError(f"{path}: the record needs a {attribute!r} attribute")
    if path.stem != schema["name"]:
        raise InvalidSchemaError(f"{path}: file name must be the record name {schema['name']!r}")
    _check_named_docs(path, schema)
    for field_path, fld in _walk_fields(schema):
        if not fld.get("doc"):
            raise InvalidSchemaError(f"{path}: field {field_path!r} has no doc")
        if fld.get("classification") not in CLASSIFICATIONS:
            raise InvalidSchemaError(
                f"{path}: field {field_path!r} has classification {fld.get('classification')!r}; "
                f"expected one of {', '.join(CLASSIFICATIONS)}"
            )
        if "mask" in fld and (
            fld["mask"] not in MASKS or fld["classification"] not in ("personal", "sensitive")
        ):
            raise InvalidSchemaError(
                f"{path}: field {field_path!r} names mask {fld['mask']!r}; a mask is one of "
                f"{', '.join(sorted(MASKS))}, on a personal or sensitive field"
            )
    key_fields = {f["name"]: f for f in schema["fields"]}
    key = key_fields.get(schema["key"])
    if key is None or key["type"] != "string":
        raise InvalidSchemaError(f"{path}: key {schema['key']!r} must name a top-level string field")
    event = EventType(topic=path.parent.name, schema=schema, path=path, schema_text=text)
    try:
        _ = event.parsed
    except Exception as exc:
        raise InvalidSchemaError(f"{path}: not a valid Avro schema: {exc}") from exc
    return event


def _check_topics(events: list[EventType]) -> None:
    keys: dict[str, str] = {}
    for event in events:
        if keys.setdefault(event.topic, event.key_field) != event.key_field:
            raise InvalidSchemaError(
                f"{event.path}: every event on {event.topic!r} must be keyed by {keys[event.topic]!r}"
            )


def _walk_fields(schema: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (dotted path, field) for every record field, descending into nested types."""
    for node in walk(schema):
        if node.field is not None:
            yield ".".join(node.field_path), node.field


def _check_named_docs(path: Path, schema: Any) -> None:
    for node in walk(schema):
        if node.kind in NAMED and isinstance(node.schema, Mapping) and not node.schema.get("doc"):
            raise InvalidSchemaError(f"{path}: named type {node.schema.get('name')!r} has no doc")
