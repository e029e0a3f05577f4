"""The shared Avro type definitions: name qualification and the one walker over schema JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.avro_types import (
    NAMED,
    PRIMITIVES,
    full_name,
    named_types,
    namespace_of,
    qualify,
    short_name,
    walk,
)
from schemas.catalog import load_catalog
from tests.conformance import cases

ADDRESS = {
    "type": "record",
    "name": "Address",
    "namespace": "govbus.common",
    "fields": [
        {"name": "street", "type": "string"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["HOME", "WORK"]}},
    ],
}
EVENT = {
    "type": "record",
    "name": "Moved",
    "namespace": "govbus.localgov",
    "fields": [
        {"name": "to", "type": ADDRESS},
        {"name": "previous", "type": ["null", "govbus.common.Address"]},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "notes", "type": {"type": "map", "values": {"type": "fixed", "name": "Hash", "size": 4}}},
    ],
}


def _at(document: Any, location: tuple[str | int, ...]) -> Any:
    for key in location:
        document = document[key]
    return document


def _every_schema() -> list[Any]:
    """The catalog's events and both sides of every resolution conformance case."""
    found: list[Any] = [event.schema for event in load_catalog()]
    for case in cases("avro_resolution_cases.json"):
        found += [case["reader"], case["writer"]]
    return found


def test_primitive_and_named_kinds_are_those_of_the_specification() -> None:
    """The eight primitive names and the named kinds (an error is a protocol's record) are defined once."""
    assert {"null", "boolean", "int", "long", "float", "double", "bytes", "string"} == PRIMITIVES
    assert {"record", "error", "enum", "fixed"} == NAMED


def test_a_short_name_is_qualified_by_the_namespace_it_is_read_in() -> None:
    """A dotted name is already full; a short one takes the namespace, or stays bare in the null namespace."""
    assert qualify("Address", "govbus.common") == "govbus.common.Address"
    assert qualify("other.Address", "govbus.common") == "other.Address"
    assert qualify("Address", "") == "Address"
    assert short_name("govbus.common.Address") == "Address"
    assert namespace_of("govbus.common.Address") == "govbus.common"
    assert namespace_of("Address") == ""


def test_a_definition_takes_its_namespace_attribute_else_the_enclosing_one() -> None:
    """The namespace attribute (empty: the null namespace) qualifies a short name, not a dotted one."""
    assert full_name({"name": "A", "namespace": "x"}, "outer") == "x.A"
    assert full_name({"name": "A"}, "outer") == "outer.A"
    assert full_name({"name": "A", "namespace": ""}, "outer") == "A"
    assert full_name({"name": "A", "namespace": None}, "outer") == "outer.A"
    assert full_name({"name": "y.A", "namespace": "x"}, "outer") == "y.A"


def test_walk_visits_every_place_a_type_stands_parents_first() -> None:
    """The root, field types, union branches, array items and map values come in depth-first order."""
    places = [(node.location, node.kind) for node in walk(EVENT)]
    assert places == [
        ((), "record"),
        (("fields", 0, "type"), "record"),
        (("fields", 0, "type", "fields", 0, "type"), "string"),
        (("fields", 0, "type", "fields", 1, "type"), "enum"),
        (("fields", 1, "type"), "union"),
        (("fields", 1, "type", 0), "null"),
        (("fields", 1, "type", 1), "govbus.common.Address"),
        (("fields", 2, "type"), "array"),
        (("fields", 2, "type", "items"), "string"),
        (("fields", 3, "type"), "map"),
        (("fields", 3, "type", "values"), "fixed"),
    ]


def test_children_first_puts_each_type_after_the_types_it_uses() -> None:
    """With children_first a record comes after its fields' types, so dependencies come first."""
    named = [node.full_name for node in walk(EVENT, children_first=True) if node.full_name]
    assert named == [
        "govbus.common.Kind",
        "govbus.common.Address",
        "govbus.localgov.Hash",
        "govbus.localgov.Moved",
    ]


def test_each_place_carries_the_namespace_a_short_name_there_is_read_in() -> None:
    """Inside a named type short names read in its namespace; the type itself reads in the enclosing one."""
    by_location = {node.location: node for node in walk(EVENT, "ignored")}
    assert by_location[()].namespace == "ignored"
    assert by_location[()].full_name == "govbus.localgov.Moved"
    assert by_location[("fields", 0, "type")].namespace == "govbus.localgov"
    enum = by_location[("fields", 0, "type", "fields", 1, "type")]
    assert (enum.namespace, enum.full_name) == ("govbus.common", "govbus.common.Kind")
    assert by_location[("fields", 3, "type", "values")].full_name == "govbus.localgov.Hash"


def test_field_path_names_the_fields_and_skips_unions_and_collections() -> None:
    """A place records the fields leading to it, and the field whose type it is, if any."""
    by_location = {node.location: node for node in walk(EVENT)}
    kind = by_location[("fields", 0, "type", "fields", 1, "type")]
    assert kind.field_path == ("to", "kind")
    assert kind.field is ADDRESS["fields"][1]  # type: ignore[index]
    branch = by_location[("fields", 1, "type", 1)]
    assert (branch.field_path, branch.field) == (("previous",), None)
    assert by_location[("fields", 2, "type", "items")].field_path == ("tags",)
    assert by_location[()].field_path == ()


def test_a_name_is_not_followed_to_its_definition() -> None:
    """A reference by name is yielded as the name, and nothing below it."""
    schema = {"type": "record", "name": "List", "fields": [{"name": "next", "type": ["null", "List"]}]}
    assert [node.schema for node in walk(schema)][-1] == "List"
    assert len(list(walk(schema))) == 4


def test_a_nested_type_object_is_walked_into() -> None:
    """``{"type": {...}}`` and ``{"type": "Name"}`` wrap the schema they name, which the walk yields."""
    schema = {"type": {"type": "array", "items": {"type": "com.Thing"}}}
    assert [node.schema for node in walk(schema)][1:] == [
        {"type": "array", "items": {"type": "com.Thing"}},
        {"type": "com.Thing"},
        "com.Thing",
    ]


def test_a_named_type_defined_twice_is_descended_into_once() -> None:
    """A second definition of a full name is yielded but its insides are not walked again."""
    inner = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "int"}]}
    schema = ["null", inner, dict(inner)]
    assert [node.kind for node in walk(schema)] == ["union", "null", "record", "int", "record"]


def test_malformed_places_are_yielded_without_failing() -> None:
    """Values that are not schemas, fields without a type and odd attributes do not stop the walk."""
    schema = {"type": "record", "name": "R", "fields": [{"name": "x"}, "junk", {"name": "y", "type": None}]}
    nodes = list(walk(schema))
    assert [node.schema for node in nodes] == [schema, None]
    assert nodes[1].kind == ""
    assert nodes[1].full_name is None
    assert [node.kind for node in walk({"type": "record", "name": 5, "fields": 3})] == ["record"]


@pytest.mark.parametrize("children_first", [False, True])
def test_every_location_leads_to_its_node(children_first: bool) -> None:
    """Over the catalog and the conformance schemas, each node's location addresses it in the document."""
    count = 0
    for schema in _every_schema():
        for node in walk(schema, children_first=children_first):
            assert _at(schema, node.location) is node.schema
            count += 1
    assert count > 900


def test_every_field_is_visited_once_with_its_path() -> None:
    """Each record field of a schema appears once, its path ending in its own name."""
    for schema in _every_schema():
        fields = [node for node in walk(schema) if node.field is not None]
        assert len({id(node.field) for node in fields}) == len(fields)
        assert all(node.field_path[-1] == node.field["name"] for node in fields if node.field)


def test_named_types_makes_each_namespace_explicit() -> None:
    """Each named type is listed under its full name with the namespace it inherited written into it."""
    found = named_types(EVENT)
    assert list(found) == [
        "govbus.localgov.Moved",
        "govbus.common.Address",
        "govbus.common.Kind",
        "govbus.localgov.Hash",
    ]
    assert found["govbus.common.Kind"]["namespace"] == "govbus.common"
    assert found["govbus.localgov.Hash"] == {
        "type": "fixed",
        "name": "Hash",
        "size": 4,
        "namespace": "govbus.localgov",
    }
    assert named_types({"type": "enum", "name": "E", "symbols": []}) == {
        "E": {"type": "enum", "name": "E", "symbols": []}
    }
    assert list(named_types({"type": "fixed", "name": "F", "size": 1}, "outer")) == ["outer.F"]


def test_walking_does_not_change_the_schema() -> None:
    """The walk reads the schema and leaves it as it was."""
    before = json.dumps(EVENT)
    list(walk(EVENT))
    list(walk(EVENT, children_first=True))
    named_types(EVENT)
    assert json.dumps(EVENT) == before
