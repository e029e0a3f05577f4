"""The shared wire-format vectors through the codec, and the invalid schemas through the registry's parser."""

from __future__ import annotations

import json
from typing import Any

import fastavro
import pytest

from bus.errors import InvalidSchemaError
from schemas.codec import decode_body, decode_header, encode_value
from schemas.registry.avro_schema import canonical_text, parse_avro
from tests.conformance import case_ids, cases, typed_value

WIRE = "wire_format_vectors.json"
INVALID = "invalid_schemas.json"


@pytest.mark.parametrize("case", cases(WIRE), ids=case_ids(WIRE))
def test_wire_format_vector_encodes_to_its_bytes(case: dict[str, Any]) -> None:
    """Encoding the vector's value with its schema id gives exactly the vector's bytes."""
    parsed = fastavro.parse_schema(case["schema"])
    encoded = encode_value(case.get("schema_id", 1), parsed, typed_value(case["value"]))
    assert (None if encoded is None else encoded.hex()) == case["wire_hex"]


FRAMED = [case for case in cases(WIRE) if case["wire_hex"] is not None]


@pytest.mark.parametrize("case", FRAMED, ids=[case["id"] for case in FRAMED])
def test_wire_format_vector_decodes_to_its_value(case: dict[str, Any]) -> None:
    """Decoding the vector's bytes gives its schema id and its value."""
    schema_id, body = decode_header(bytes.fromhex(case["wire_hex"]))
    assert schema_id == case["schema_id"]
    assert decode_body(body, fastavro.parse_schema(case["schema"])) == typed_value(case["value"])


@pytest.mark.parametrize("case", cases(INVALID), ids=case_ids(INVALID))
def test_invalid_schema_is_refused_with_a_reason(case: dict[str, Any]) -> None:
    """Each invalid schema string raises InvalidSchemaError whose message starts 'Invalid schema'."""
    with pytest.raises(InvalidSchemaError, match=r"^Invalid schema"):
        parse_avro(case["schema_string"])


def test_canonical_text_ignores_whitespace_and_attribute_order() -> None:
    """Two spellings of one schema that differ in layout only have one canonical text."""
    one = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}'
    other = '{ "fields":[{"type":"int","name":"a"}],\n "name":"R","type":"record"}'
    assert parse_avro(one).canonical == parse_avro(other).canonical
    assert (
        canonical_text(json.loads(one)) == '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}'
    )


def test_default_that_does_not_fit_its_type_is_refused() -> None:
    """A field default of the wrong type is an invalid schema that names the default."""
    schema = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "int", "default": "x"}]}
    with pytest.raises(InvalidSchemaError, match=r"^Invalid schema: .*Default value <x>"):
        parse_avro(json.dumps(schema))


def test_union_default_must_fit_the_first_branch() -> None:
    """A union field's default is checked against its first branch, as the Avro specification says."""
    good = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "n", "type": ["null", "int"], "default": None}],
    }
    bad = {"type": "record", "name": "R", "fields": [{"name": "n", "type": ["int", "null"], "default": None}]}
    parse_avro(json.dumps(good))
    with pytest.raises(InvalidSchemaError):
        parse_avro(json.dumps(bad))
