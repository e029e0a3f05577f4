"""Avro schema resolution: the upstream conformance cases, then the messages and paths we report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.registry.avro_names import SchemaParseError
from schemas.registry.compatibility import Incompatibility, can_read, check_resolution

CONFORMANCE = Path(__file__).resolve().parents[1] / "data" / "conformance"
CASES: list[dict[str, Any]] = json.loads((CONFORMANCE / "avro_resolution_cases.json").read_text())["cases"]


def _record(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def _only(problems: list[Incompatibility]) -> Incompatibility:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


ADDRESS_V1 = _record("Address", {"name": "street", "type": "string"})
ADDRESS_V2 = _record(
    "Address", {"name": "street", "type": "string"}, {"name": "postal_code", "type": "string"}
)


def test_conformance_file_has_every_case() -> None:
    """The shared conformance file holds the 163 upstream cases with unique ids."""
    assert len(CASES) == 163
    assert len({case["id"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_conformance_case(case: dict[str, Any]) -> None:
    """Each upstream case gets its expected verdict, and a refusal always comes with a reason."""
    problems = check_resolution(case["reader"], case["writer"])
    assert can_read(case["reader"], case["writer"]) is case["compatible"], [str(p) for p in problems]
    if case["compatible"]:
        assert problems == []
    else:
        assert problems, "an incompatible verdict must come with at least one Incompatibility"
        assert all(p.kind and p.path.startswith("/") and p.message for p in problems)


def test_new_field_without_default_is_named_in_path_and_message() -> None:
    """A reader field the writer lacks and that has no default is reported at its own path, by name."""
    writer = _record("Household", {"name": "id", "type": "string"})
    reader = _record("Household", {"name": "id", "type": "string"}, {"name": "household_size", "type": "int"})
    problem = _only(check_resolution(reader, writer))
    assert problem.kind == "READER_FIELD_MISSING_DEFAULT_VALUE"
    assert problem.path == "/household_size"
    assert "'household_size' (int)" in problem.message
    assert "no default" in problem.message
    assert str(problem) == f"READER_FIELD_MISSING_DEFAULT_VALUE at /household_size: {problem.message}"


def test_new_field_with_default_is_compatible() -> None:
    """Giving the new reader field a default makes the same change readable."""
    writer = _record("Household", {"name": "id", "type": "string"})
    reader = _record(
        "Household", {"name": "id", "type": "string"}, {"name": "size", "type": "int", "default": 1}
    )
    assert check_resolution(reader, writer) == []


@pytest.mark.parametrize(
    ("reader_address", "writer_address"),
    [
        pytest.param(ADDRESS_V2, ADDRESS_V1, id="plain-record"),
        pytest.param(["null", ADDRESS_V2], ["null", ADDRESS_V1], id="optional-record"),
    ],
)
def test_nested_record_field_path_names_each_field(reader_address: Any, writer_address: Any) -> None:
    """A problem inside a nested record, optional or not, is located by field names: /address/postal_code."""
    reader = _record("Resident", {"name": "address", "type": reader_address})
    writer = _record("Resident", {"name": "address", "type": writer_address})
    problem = _only(check_resolution(reader, writer))
    assert problem.kind == "READER_FIELD_MISSING_DEFAULT_VALUE"
    assert problem.path == "/address/postal_code"
    assert "'postal_code'" in problem.message


def test_array_items_are_marked_in_the_path() -> None:
    """A problem in the items of an array is located under the array field with a [] segment."""
    reader = _record("Resident", {"name": "addresses", "type": {"type": "array", "items": ADDRESS_V2}})
    writer = _record("Resident", {"name": "addresses", "type": {"type": "array", "items": ADDRESS_V1}})
    assert _only(check_resolution(reader, writer)).path == "/addresses/[]/postal_code"


def test_enum_missing_symbol_names_the_symbol() -> None:
    """A writer enum symbol the reader lacks, with no reader default, is named in the message."""
    status = {"type": "enum", "name": "Status"}
    reader = _record("Case", {"name": "status", "type": {**status, "symbols": ["OPEN", "CLOSED"]}})
    writer = _record(
        "Case", {"name": "status", "type": {**status, "symbols": ["OPEN", "CLOSED", "APPEALED"]}}
    )
    problem = _only(check_resolution(reader, writer))
    assert problem.kind == "MISSING_ENUM_SYMBOLS"
    assert problem.path == "/status"
    assert "'APPEALED'" in problem.message
    assert "'OPEN'" not in problem.message


def test_enum_default_absorbs_unknown_symbols() -> None:
    """A reader enum default makes writer symbols it does not know readable."""
    reader = {"type": "enum", "name": "Status", "symbols": ["OPEN", "OTHER"], "default": "OTHER"}
    writer = {"type": "enum", "name": "Status", "symbols": ["OPEN", "APPEALED"]}
    assert can_read(reader, writer)


def test_recursive_schema_terminates_and_reports_once() -> None:
    """A self-referencing linked list resolves without looping and reports its field problem once."""

    def linked_list(head: str) -> dict[str, Any]:
        return _record(
            "Node",
            {"name": "head", "type": head},
            {"name": "tail", "type": ["null", "Node"], "default": None},
            namespace="govbus.test",
        )

    assert check_resolution(linked_list("long"), linked_list("int")) == []
    problem = _only(check_resolution(linked_list("int"), linked_list("long")))
    assert (problem.kind, problem.path) == ("TYPE_MISMATCH", "/head")


def test_every_problem_is_collected() -> None:
    """Independent problems in different fields are all reported, each at its own path."""
    reader = _record(
        "R", {"name": "a", "type": "int"}, {"name": "b", "type": "string"}, {"name": "c", "type": "int"}
    )
    writer = _record("R", {"name": "a", "type": "long"}, {"name": "b", "type": "boolean"})
    found = {(p.kind, p.path) for p in check_resolution(reader, writer)}
    assert found == {
        ("TYPE_MISMATCH", "/a"),
        ("TYPE_MISMATCH", "/b"),
        ("READER_FIELD_MISSING_DEFAULT_VALUE", "/c"),
    }


def test_writer_union_branch_the_reader_cannot_take_is_named() -> None:
    """Making a field optional in the writer is refused for a non-optional reader, naming the null branch."""
    reader = _record("R", {"name": "age", "type": "int"})
    writer = _record("R", {"name": "age", "type": ["null", "int"], "default": None})
    problem = _only(check_resolution(reader, writer))
    assert (problem.kind, problem.path) == ("TYPE_MISMATCH", "/age")
    assert "null" in problem.message


def test_named_references_resolve_with_namespace_inheritance() -> None:
    """Short and full references to earlier named types resolve within the enclosing namespace."""
    code = {"type": "fixed", "name": "Code", "size": 4}
    reader = _record("R", {"name": "a", "type": code}, {"name": "b", "type": "Code"}, namespace="gov.x")
    writer = _record(
        "R",
        {"name": "a", "type": {**code, "size": 8}},
        {"name": "b", "type": "gov.x.Code"},
        namespace="gov.x",
    )
    found = {(p.kind, p.path) for p in check_resolution(reader, writer)}
    assert found == {("FIXED_SIZE_MISMATCH", "/a"), ("FIXED_SIZE_MISMATCH", "/b")}


def test_unknown_type_reference_is_a_parse_error() -> None:
    """A reference to a name the schema never defines is rejected as an invalid schema."""
    with pytest.raises(SchemaParseError, match="Missing"):
        check_resolution(_record("R", {"name": "a", "type": "Missing"}), _record("R"))


@pytest.mark.parametrize(
    ("reader", "writer", "compatible"),
    [
        pytest.param((10, 2), (10, 2), True, id="same-decimal"),
        pytest.param((12, 2), (10, 2), False, id="wider-precision"),
        pytest.param((10, 3), (10, 2), False, id="other-scale"),
        pytest.param((10, 2), None, True, id="writer-plain-bytes"),
    ],
)
def test_decimal_resolution_needs_equal_precision_and_scale(
    reader: tuple[int, int], writer: tuple[int, int] | None, compatible: bool
) -> None:
    """Two decimals resolve only with equal precision and scale; otherwise the underlying bytes decide."""

    def schema(decimal: tuple[int, int] | None) -> dict[str, Any]:
        if decimal is None:
            return {"type": "bytes"}
        return {"type": "bytes", "logicalType": "decimal", "precision": decimal[0], "scale": decimal[1]}

    assert can_read(schema(reader), schema(writer)) is compatible


def test_unknown_logical_type_is_ignored() -> None:
    """An unknown logical type resolves by its underlying type, including promotions."""
    assert can_read(
        {"type": "long", "logicalType": "govbus-epoch-day"}, {"type": "int", "logicalType": "date"}
    )
