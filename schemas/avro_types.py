"""The Avro type system as schema JSON (``json.loads`` output) spells it, defined once for every module.

The primitive type names, the named kinds, how a name is qualified, and one walker: :func:`walk` yields
every place in a schema where a type stands, with the namespace a short name there is read in. The
modules that read schemas (catalog checks, the registry's validation and reference inlining, the event
model generator) walk with it; those that build something type by type (the registry's node graph, the
encoder compiler, the generator's rendering) keep their own recursion over these same definitions.

Names follow the Avro specification:

* a name containing a dot is a full name and its ``namespace`` attribute is ignored;
* otherwise the ``namespace`` attribute, or failing that the enclosing named type's namespace,
  qualifies it (an empty namespace means the null namespace).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
RECORDS = frozenset({"record", "error"})
"""The kinds that have fields: ``error`` is a protocol's record and reads like one."""
NAMED = RECORDS | {"enum", "fixed"}
KEYWORDS = PRIMITIVES | NAMED | {"array", "map"}
"""Every name that stands for a kind of type rather than for a named type."""


def qualify(name: str, namespace: str) -> str:
    """The full name ``name`` stands for when read in ``namespace`` (a dotted name is already full)."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def full_name(definition: Mapping[str, Any], enclosing: str) -> str:
    """The full name a named type's ``definition`` gives it, read inside the ``enclosing`` namespace."""
    declared = definition.get("namespace")
    return qualify(str(definition["name"]), declared if isinstance(declared, str) else enclosing)


def namespace_of(fullname: str) -> str:
    """The part of a full name before its last dot ("" for the null namespace)."""
    return fullname.rpartition(".")[0]


def short_name(fullname: str) -> str:
    """The part of a full name after its last dot."""
    return fullname.rpartition(".")[2]


@dataclass(frozen=True)
class SchemaNode:
    """One place in a schema where a type stands: the root, a field's type, items, values or a branch."""

    schema: Any
    """What stands there: a type name (str), a type object (dict) or a union (list)."""
    namespace: str
    """The namespace a short name at this place is read in (for a named type: the enclosing one)."""
    location: tuple[str | int, ...]
    """The JSON keys and list indexes that lead from the root to this place."""
    field_path: tuple[str, ...]
    """The names of the record fields that lead from the root to this place."""
    field: Mapping[str, Any] | None = None
    """The record field whose ``type`` this is, if it is one."""

    @property
    def kind(self) -> str:
        """The type keyword or name here: a dict's ``type``, a name itself, ``union`` for a list."""
        if isinstance(self.schema, list):
            return "union"
        if isinstance(self.schema, Mapping):
            declared = self.schema.get("type")
            return declared if isinstance(declared, str) else ""
        return self.schema if isinstance(self.schema, str) else ""

    @property
    def full_name(self) -> str | None:
        """The full name when this place defines a named type, else None."""
        schema = self.schema
        if isinstance(schema, Mapping) and self.kind in NAMED and isinstance(schema.get("name"), str):
            return full_name(schema, self.namespace)
        return None


def walk(schema: Any, namespace: str = "", *, children_first: bool = False) -> Iterator[SchemaNode]:
    """Every place in ``schema`` where a type stands, depth first, parents before children.

    Follows records' fields, arrays' items, maps' values, unions' branches and a nested
    ``{"type": {...}}``; a name is not followed to its definition, and a named type defined twice is
    descended into once. ``children_first`` yields each place after those below it instead (so a type
    comes after the types it uses).
    """
    yield from _walk(SchemaNode(schema, namespace, (), ()), set(), children_first=children_first)


def _walk(node: SchemaNode, seen: set[str], *, children_first: bool) -> Iterator[SchemaNode]:
    if not children_first:
        yield node
    defined = node.full_name
    if defined is None or defined not in seen:
        if defined is not None:
            seen.add(defined)
        for child in _children(node):
            yield from _walk(child, seen, children_first=children_first)
    if children_first:
        yield node


def _children(node: SchemaNode) -> Iterator[SchemaNode]:
    schema, kind, location, path = node.schema, node.kind, node.location, node.field_path
    if isinstance(schema, list):
        for index, branch in enumerate(schema):
            yield SchemaNode(branch, node.namespace, (*location, index), path)
        return
    if not isinstance(schema, Mapping):
        return
    defined = node.full_name
    inner = node.namespace if defined is None else namespace_of(defined)
    if kind in RECORDS and isinstance(schema.get("fields"), list):
        for index, fld in enumerate(schema["fields"]):
            if isinstance(fld, Mapping) and "type" in fld:
                where = (*location, "fields", index, "type")
                yield SchemaNode(fld["type"], inner, where, (*path, str(fld.get("name"))), fld)
    elif kind == "array" and "items" in schema:
        yield SchemaNode(schema["items"], inner, (*location, "items"), path)
    elif kind == "map" and "values" in schema:
        yield SchemaNode(schema["values"], inner, (*location, "values"), path)
    elif "type" in schema and kind not in KEYWORDS:
        # {"type": {...}}, {"type": [...]} and {"type": "SomeName"} wrap the schema they name.
        yield SchemaNode(schema["type"], inner, (*location, "type"), path)


def named_types(schema: Any, namespace: str = "") -> dict[str, Any]:
    """Full name → definition of every named type in ``schema``, its namespace made explicit."""
    found: dict[str, Any] = {}
    for node in walk(schema, namespace):
        defined = node.full_name
        if defined is None or defined in found:
            continue
        definition = dict(node.schema)
        if "." not in definition["name"] and namespace_of(defined):
            definition["namespace"] = namespace_of(defined)
        found[defined] = definition
    return found
