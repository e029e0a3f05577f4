"""Avro schemas as JSON (``json.loads`` output) turned into a small graph of typed nodes.

Named types (record, enum, fixed) are entered in a per-schema name table under their full name as
soon as their name is read, so a later reference, including one from inside the type itself (a
linked list), resolves to the very same node object. A type's own name is qualified as the Avro
specification says (:func:`schemas.avro_types.full_name`), and:

* aliases are qualified the same way, with the type's own namespace;
* a short reference is looked up in the enclosing namespace, then in the null namespace (as the
  Java implementation does).

Logical types are kept only as annotations: resolution goes by the underlying type. The one
exception, ``decimal``, keeps its precision and scale when its attributes are valid; an invalid
logical type is ignored, as the specification requires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from schemas.avro_types import PRIMITIVES, RECORDS, full_name, namespace_of, qualify, short_name

MAX_FIXED_SIZE = 2**31 - 1
"""The largest ``size`` of a fixed (Avro's lengths are ints)."""
EXACT_FIXED_SIZE = 512


class SchemaParseError(ValueError):
    """A schema that is not valid Avro JSON, or references a name it never defines."""


@dataclass(eq=False)
class Primitive:
    """A primitive type, with the logical type annotating it if any."""

    kind: str
    logical: str | None = None
    decimal: tuple[int, int] | None = None


@dataclass(eq=False)
class Named:
    """What records, enums and fixed types share: a full name and aliases (both qualified)."""

    fullname: str
    aliases: frozenset[str]

    @property
    def name(self) -> str:
        """The unqualified name."""
        return short_name(self.fullname)


@dataclass(eq=False)
class Field:
    """A record field; ``type`` is filled in after the record is registered, for self-references."""

    name: str
    aliases: tuple[str, ...]
    has_default: bool
    type: Node = field(default_factory=lambda: Primitive("null"))


@dataclass(eq=False)
class Record(Named):
    """A record (or a protocol ``error``, which resolves like one)."""

    fields: list[Field] = field(default_factory=list)


@dataclass(eq=False)
class Enum(Named):
    """An enum; ``default`` is the symbol a reader substitutes for one it does not know."""

    symbols: tuple[str, ...] = ()
    default: str | None = None


@dataclass(eq=False)
class Fixed(Named):
    """A fixed-size byte sequence."""

    size: int = 0
    logical: str | None = None
    decimal: tuple[int, int] | None = None


@dataclass(eq=False)
class Array:
    """An array of ``items``."""

    items: Node


@dataclass(eq=False)
class Map:
    """A map from strings to ``values``."""

    values: Node


@dataclass(eq=False)
class Union:
    """A union of branches (never itself a union)."""

    branches: tuple[Node, ...]


Node = Primitive | Record | Enum | Fixed | Array | Map | Union


def parse_schema(schema: Any) -> Node:
    """Parse a JSON-decoded Avro schema into nodes; raises :class:`SchemaParseError` if it is invalid."""
    return _Parser().parse(schema, "")


def describe(node: Node) -> str:  # noqa: PLR0911 - one case per type
    """A short human description of a type, e.g. ``array of record 'ns.Address'``."""
    if isinstance(node, Primitive):
        if node.decimal is not None:
            return f"{node.kind} (decimal({node.decimal[0]}, {node.decimal[1]}))"
        return f"{node.kind} ({node.logical})" if node.logical else node.kind
    if isinstance(node, Record):
        return f"record '{node.fullname}'"
    if isinstance(node, Enum):
        return f"enum '{node.fullname}'"
    if isinstance(node, Fixed):
        decimal = f", decimal({node.decimal[0]}, {node.decimal[1]})" if node.decimal else ""
        return f"fixed '{node.fullname}' ({node.size} bytes{decimal})"
    if isinstance(node, Array):
        return f"array of {describe(node.items)}"
    if isinstance(node, Map):
        return f"map of {describe(node.values)}"
    return "union [" + ", ".join(describe(b) for b in node.branches) + "]"


class _Parser:
    """One parse: the name table lives as long as the schema being read."""

    def __init__(self) -> None:
        self.names: dict[str, Record | Enum | Fixed] = {}

    def parse(self, schema: Any, namespace: str) -> Node:  # noqa: PLR0911 - one case per type
        if isinstance(schema, str):
            return Primitive(schema) if schema in PRIMITIVES else self._lookup(schema, namespace)
        if isinstance(schema, list):
            return self._union(schema, namespace)
        if not isinstance(schema, dict):
            raise SchemaParseError(f"a schema must be a string, object or array, not {schema!r}")
        kind = schema.get("type")
        if isinstance(kind, (dict, list)):
            # Tolerated nesting such as {"type": {"type": "string"}}: the outer object adds nothing.
            return self.parse(kind, namespace)
        if not isinstance(kind, str):
            raise SchemaParseError(f"schema object without a string 'type': {schema!r}")
        if kind in PRIMITIVES:
            return _annotated(Primitive(kind), schema)
        if kind in RECORDS:
            return self._record(schema, namespace)
        if kind == "enum":
            return self._enum(schema, namespace)
        if kind == "fixed":
            return self._fixed(schema, namespace)
        if kind == "array":
            return Array(self.parse(_required(schema, "items"), namespace))
        if kind == "map":
            return Map(self.parse(_required(schema, "values"), namespace))
        # {"type": "SomeName"} is accepted as a reference, as the Java parser does.
        return self._lookup(kind, namespace)

    def _union(self, branches: list[Any], namespace: str) -> Union:
        parsed = tuple(self.parse(b, namespace) for b in branches)
        if any(isinstance(b, Union) for b in parsed):
            raise SchemaParseError("a union may not directly contain another union")
        return Union(parsed)

    def _lookup(self, ref: str, namespace: str) -> Node:
        candidates = [ref] if "." in ref else [qualify(ref, namespace), ref]
        for candidate in candidates:
            if candidate in self.names:
                return self.names[candidate]
        raise SchemaParseError(f"unknown type name {ref!r} (namespace {namespace!r})")

    def _identity(self, schema: dict[str, Any], enclosing: str) -> tuple[str, frozenset[str]]:
        name = schema.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaParseError(f"named type without a 'name': {schema!r}")
        fullname = full_name(schema, enclosing)
        own_namespace = namespace_of(fullname)
        aliases = schema.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise SchemaParseError(f"'aliases' of {fullname!r} must be a list of strings")
        qualified = frozenset(qualify(a, own_namespace) for a in aliases)
        if fullname in self.names or fullname in PRIMITIVES:
            raise SchemaParseError(f"type {fullname!r} is defined twice")
        return fullname, qualified

    def _record(self, schema: dict[str, Any], enclosing: str) -> Record:
        fullname, aliases = self._identity(schema, enclosing)
        record = Record(fullname, aliases)
        self.names[fullname] = record
        raw_fields = _required(schema, "fields")
        if not isinstance(raw_fields, list):
            raise SchemaParseError(f"'fields' of {fullname!r} must be a list")
        namespace = namespace_of(fullname)
        for raw in raw_fields:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise SchemaParseError(f"a field of {fullname!r} has no name: {raw!r}")
            aliases_raw = raw.get("aliases") or []
            field_aliases = tuple(a for a in aliases_raw if isinstance(a, str))
            new = Field(raw["name"], field_aliases, "default" in raw)
            record.fields.append(new)
            new.type = self.parse(_required(raw, "type"), namespace)
        return record

    def _enum(self, schema: dict[str, Any], enclosing: str) -> Enum:
        fullname, aliases = self._identity(schema, enclosing)
        symbols = _required(schema, "symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise SchemaParseError(f"'symbols' of enum {fullname!r} must be a list of strings")
        default = schema.get("default")
        node = Enum(fullname, aliases, tuple(symbols), default if isinstance(default, str) else None)
        self.names[fullname] = node
        return node

    def _fixed(self, schema: dict[str, Any], enclosing: str) -> Fixed:
        fullname, aliases = self._identity(schema, enclosing)
        size = _required(schema, "size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FIXED_SIZE:
            raise SchemaParseError(f"'size' of fixed {fullname!r} must be an integer in [0, 2^31-1]")
        node = Fixed(fullname, aliases, size)
        self.names[fullname] = node
        logical = schema.get("logicalType")
        if isinstance(logical, str):
            node.logical = logical
            node.decimal = _decimal(schema, max_digits=_fixed_digits(size))
        return node


def _annotated(node: Primitive, schema: dict[str, Any]) -> Primitive:
    logical = schema.get("logicalType")
    if isinstance(logical, str):
        node.logical = logical
        if node.kind == "bytes":
            node.decimal = _decimal(schema, max_digits=None)
    return node


def _decimal(schema: dict[str, Any], max_digits: int | None) -> tuple[int, int] | None:
    """Precision and scale of a valid decimal; None when it is not one (then it is plain bytes/fixed)."""
    if schema.get("logicalType") != "decimal":
        return None
    precision, scale = schema.get("precision"), schema.get("scale", 0)
    if isinstance(precision, bool) or isinstance(scale, bool):
        return None
    if not isinstance(precision, int) or not isinstance(scale, int):
        return None
    if precision < 1 or not 0 <= scale <= precision:
        return None
    if max_digits is not None and precision > max_digits:
        return None
    return precision, scale


def _fixed_digits(size: int) -> int:
    """Decimal digits a signed two's-complement value of ``size`` bytes always holds.

    Exact up to :data:`EXACT_FIXED_SIZE` bytes (1,233 digits); above, ``floor((8 * size - 1) * log10(2))``
    in floating point, which may be one off: Python refuses to print integers of more than 4,300
    digits, and no decimal precision that large is in use.
    """
    if size <= 0:
        return 0
    if size <= EXACT_FIXED_SIZE:
        return len(str(2 ** (8 * size - 1) - 1)) - 1
    return math.floor((8 * size - 1) * math.log10(2))


def _required(schema: dict[str, Any], key: str) -> Any:
    if key not in schema:
        raise SchemaParseError(f"schema is missing {key!r}: {schema!r}")
    return schema[key]
