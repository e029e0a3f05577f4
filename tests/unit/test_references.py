"""Inlining referenced named types into a schema, so the compatibility checker sees one whole schema."""

from __future__ import annotations

import copy
from typing import Any

from schemas.registry.compatibility import can_read
from schemas.registry.references import inline_references

KIND = {"type": "enum", "name": "Kind", "namespace": "govbus.common", "symbols": ["HOME", "WORK"]}
ADDRESS = {
    "type": "record",
    "name": "Address",
    "namespace": "govbus.common",
    "fields": [{"name": "street", "type": "string"}, {"name": "kind", "type": "govbus.common.Kind"}],
}


def _home(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Home", "namespace": "t", "fields": list(fields)}


def test_the_first_use_gets_the_definition_and_later_uses_keep_the_name() -> None:
    """Only the first use of a referenced type is replaced; the schema itself is left unchanged."""
    schema = _home(
        {"name": "main", "type": "govbus.common.Kind"},
        {"name": "other", "type": ["null", "govbus.common.Kind"]},
    )
    before = copy.deepcopy(schema)
    inlined = inline_references(schema, [KIND])
    assert inlined["fields"][0]["type"] == KIND
    assert inlined["fields"][1]["type"] == ["null", "govbus.common.Kind"]
    assert schema == before


def test_a_definition_is_inlined_with_the_references_it_uses_where_it_stands() -> None:
    """A record referenced by its short name gets the referenced types it uses inlined inside it."""
    schema = _home(
        {"name": "address", "type": {"type": "array", "items": "Address"}},
        {"name": "kind", "type": "govbus.common.Kind"},
    )
    inlined = inline_references(schema, [KIND, ADDRESS])
    address = inlined["fields"][0]["type"]["items"]
    assert address["name"] == "Address"
    assert address["fields"][1]["type"] == KIND
    assert inlined["fields"][1]["type"] == "govbus.common.Kind"
    assert can_read(inlined, inlined)


def test_types_the_schema_defines_itself_are_not_inlined() -> None:
    """A name the schema defines is left alone even when a reference defines it too."""
    own = {"type": "enum", "name": "Kind", "namespace": "govbus.common", "symbols": ["X"]}
    schema = _home({"name": "own", "type": own}, {"name": "again", "type": "govbus.common.Kind"})
    assert inline_references(schema, [KIND]) == schema


def test_a_schema_that_is_only_a_name_becomes_the_definition() -> None:
    """A whole schema naming a referenced type becomes that type's definition."""
    assert inline_references("govbus.common.Kind", [KIND]) == KIND
    assert inline_references("govbus.common.Kind", []) == "govbus.common.Kind"


def test_a_type_nested_in_an_inlined_definition_is_not_inlined_again() -> None:
    """A later use of a type defined inside an inlined reference keeps its name, not a second definition."""
    person = {
        "type": "record",
        "name": "Person",
        "namespace": "govbus.common",
        "fields": [{"name": "kind", "type": KIND}],
    }
    schema = _home(
        {"name": "owner", "type": "govbus.common.Person"},
        {"name": "kind", "type": "govbus.common.Kind"},
    )
    inlined = inline_references(schema, [person])
    assert inlined["fields"][0]["type"] == person
    assert inlined["fields"][1]["type"] == "govbus.common.Kind"
    assert can_read(inlined, inlined)
