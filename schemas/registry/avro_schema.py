"""Reading a schema text as the registry does: parse, validate, and give it one canonical text.

A schema is valid when it is JSON, fastavro can parse it (with the named types of its references),
and every default fits its type (Java Avro has validated defaults since 1.9; a registry that let an
invalid default through would hand consumers a schema they cannot resolve with). Schemas are
deduplicated on their canonical text: compact JSON with the attributes of every object in one
fixed order, so two texts that differ only in whitespace or attribute order get one id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fastavro

from bus.errors import InvalidSchemaError
from schemas.avro_types import PRIMITIVES, RECORDS, named_types, short_name, walk
from schemas.registry import strict_json

_KEY_ORDER = (
    "type", "name", "namespace", "doc", "aliases", "fields", "symbols", "items", "values", "size",
    "logicalType", "precision", "scale", "default", "order",
)  # fmt: skip
_RANK = {key: rank for rank, key in enumerate(_KEY_ORDER)}
_INT_RANGE = {"int": 2**31, "long": 2**63}


@dataclass(frozen=True)
class AvroSchema:
    """A validated schema: its JSON form and its canonical text."""

    schema: Any
    canonical: str


def parse_avro(text: Any, referenced: Sequence[Any] = ()) -> AvroSchema:
    """Validate ``text``; ``referenced`` are the JSON forms of the schemas its references name.

    Raises InvalidSchemaError with the reason.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidSchemaError("Invalid schema: empty schema")
    try:
        schema = strict_json.loads(text)
    except strict_json.RefusedJSONError as exc:
        raise InvalidSchemaError(f"Invalid schema: not JSON: {exc}") from exc
    named: dict[str, Any] = {}
    try:
        for dependency in referenced:
            fastavro.parse_schema(dependency, named_schemas=named)
        fastavro.parse_schema(schema, named_schemas=named)
    except Exception as exc:  # fastavro raises many types for invalid schemas
        raise InvalidSchemaError(f"Invalid schema: {type(exc).__name__}: {exc}") from exc
    _check_defaults(schema, _names(referenced, schema))
    return AvroSchema(schema=schema, canonical=canonical_text(schema))


def canonical_text(schema: Any) -> str:
    """Compact JSON with every object's attributes in one fixed order."""
    return json.dumps(_ordered(schema), separators=(",", ":"), ensure_ascii=False)


def _ordered(node: Any, *, field: bool = False) -> Any:
    if isinstance(node, list):
        return [_ordered(item, field=field) for item in node]
    if isinstance(node, dict):
        # A field reads name first ({"name": "a", "type": "int"}), a type reads type first.
        rank = {**_RANK, "name": -1} if field else _RANK
        keys = sorted(node, key=lambda k: (rank.get(k, len(rank)), k))
        return {k: node[k] if k == "default" else _ordered(node[k], field=k == "fields") for k in keys}
    return node


def _names(referenced: Sequence[Any], schema: Any) -> dict[str, Any]:
    """Every named type defined in the references and the schema, by full and by short name."""
    table: dict[str, Any] = {}
    for source in (*referenced, schema):
        for full, definition in named_types(source).items():
            table[full] = definition
            table.setdefault(short_name(full), definition)
    return table


def _check_defaults(schema: Any, names: Mapping[str, Any]) -> None:
    for node in walk(schema):
        fld = node.field
        if fld is not None and "default" in fld and not _fits(node.schema, fld["default"], names):
            raise InvalidSchemaError(
                f"Invalid schema: invalid default for field /{'/'.join(node.field_path)}: "
                f"{json.dumps(fld['default'])} is not a {json.dumps(node.schema)[:80]}"
            )
        enum = node.schema if node.kind == "enum" and isinstance(node.schema, dict) else {}
        if "default" in enum and enum["default"] not in enum.get("symbols", []):
            raise InvalidSchemaError(
                f"Invalid schema: enum {enum.get('name')!r} default {enum['default']!r} "
                "is not one of its symbols"
            )


def _fits(schema: Any, value: Any, names: Mapping[str, Any]) -> bool:  # noqa: PLR0911 - one case per type
    """Whether a JSON default ``value`` is valid for ``schema`` (a union's default fits its first branch)."""
    if isinstance(schema, list):
        return bool(schema) and _fits(schema[0], value, names)
    if isinstance(schema, str):
        if schema not in PRIMITIVES:
            target = names.get(schema) or names.get(short_name(schema))
            return target is None or _fits(target, value, names)
        return _fits_primitive(schema, value)
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind in PRIMITIVES:
        return _fits_primitive(str(kind), value)
    if kind == "enum":
        return value in schema.get("symbols", [])
    if kind == "fixed":
        return isinstance(value, str) and len(value) == schema.get("size")
    if kind == "array":
        return isinstance(value, list) and all(_fits(schema.get("items"), v, names) for v in value)
    if kind == "map":
        return isinstance(value, dict) and all(_fits(schema.get("values"), v, names) for v in value.values())
    if kind in RECORDS:
        return isinstance(value, dict) and all(
            _fits(f["type"], value[f["name"]], names) if f["name"] in value else "default" in f
            for f in schema.get("fields", [])
        )
    return _fits(kind, value, names)


def _fits_primitive(kind: str, value: Any) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in _INT_RANGE:
        bound = _INT_RANGE[kind]
        return isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
    if kind in ("float", "double"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)  # string, bytes (ISO-8859-1 text in JSON)
