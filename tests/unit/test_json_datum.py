"""JSON payloads converted for the Avro encoder, as the schema says: dates, times, decimals, bytes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.catalog import load_catalog
from schemas.json_datum import DatumError, compile_converter, from_json

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Sample",
    "namespace": "t",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "on", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "blob", "type": "bytes"},
        {
            "name": "home",
            "type": {
                "type": "record",
                "name": "Place",
                "fields": [{"name": "since", "type": {"type": "int", "logicalType": "date"}}],
            },
        },
        {"name": "work", "type": ["null", "Place"]},
        {"name": "days", "type": {"type": "array", "items": {"type": "int", "logicalType": "date"}}},
    ],
}
PAYLOAD: dict[str, Any] = {
    "id": "R1",
    "on": "2026-12-01",
    "at": "2026-12-01T09:00:00+09:00",
    "amount": "1250000.00",
    "blob": "AAE=",
    "home": {"since": "2020-01-02"},
    "work": {"since": "2021-03-04"},
    "days": ["2026-01-01"],
}


def test_every_logical_type_and_nested_named_type_is_converted() -> None:
    """Dates, an aware time, a decimal, base64 bytes, a named record used twice and an array convert."""
    value = from_json(SCHEMA, PAYLOAD)
    assert value["id"] == "R1"
    assert value["on"] == date(2026, 12, 1)
    assert value["at"] == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert value["amount"] == Decimal("1250000.00")
    assert value["blob"] == b"\x00\x01"
    assert value["home"] == {"since": date(2020, 1, 2)}
    assert value["work"] == {"since": date(2021, 3, 4)}
    assert value["days"] == [date(2026, 1, 1)]
    assert from_json(SCHEMA, {**PAYLOAD, "at": None, "work": None})["work"] is None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("on", "2026-13-01", "on"),
        ("on", 20261201, "on"),
        ("at", "2026-12-01T09:00:00", "at"),
        ("amount", 12.5, "amount"),
        ("amount", "NaN", "amount"),
        ("amount", "twelve", "amount"),
        ("blob", "not base64!", "blob"),
        ("home", {"since": "x"}, "home.since"),
        ("days", ["2026-01-01", "no"], "days[1]"),
        ("home", "not an object", "home"),
    ],
)
def test_a_value_that_does_not_fit_names_its_field(field: str, value: Any, named: str) -> None:
    """A value that cannot be converted raises DatumError whose message starts with the field's path."""
    with pytest.raises(DatumError) as refused:
        from_json(SCHEMA, {**PAYLOAD, field: value})
    assert str(refused.value).startswith(named)


def test_a_catalog_payload_of_plain_values_passes_through_unchanged() -> None:
    """Fields that need no conversion are not copied or touched; every catalog schema compiles."""
    for kind in load_catalog():
        compile_converter(kind.schema)
    plain = {"type": "record", "name": "P", "fields": [{"name": "a", "type": "string"}]}
    payload = {"a": "x"}
    assert compile_converter(plain)(payload) is payload
