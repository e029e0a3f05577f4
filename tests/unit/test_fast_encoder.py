"""The compiled Avro encoder (C extension and pure-Python fallback) against fastavro's schemaless_writer."""

from __future__ import annotations

import io
import math
import os
import random
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from fastavro import schemaless_writer

from bus.errors import SerializationError
from bus.kafka_config import KafkaConnection
from producers.publisher import Publisher
from producers.simulators.simulation import simulated_events
from schemas.catalog import load_catalog
from schemas.codec import encode as codec_encode
from schemas.envelope import new_event_id
from schemas.fast_encoder import (
    ACCELERATED,
    DISABLE_ENV,
    PurePythonEncoder,
    compile_encoder,
    parse,
)

needs_c = pytest.mark.skipif(not ACCELERATED, reason="schemas._avro_fast is not built on this machine")
CATALOG = load_catalog()
KST = timezone(timedelta(hours=9), "KST")
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def fastavro_bytes(schema: Any, value: Any) -> bytes:
    """What fastavro writes for ``value``."""
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse(schema)[0], value)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# a schema with every type, and a random generator of values for any parsed schema

INNER = {
    "type": "record",
    "name": "Inner",
    "fields": [
        {"name": "x", "type": ["null", "long", "string"]},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}
KITCHEN: dict[str, Any] = {
    "type": "record",
    "name": "Kitchen",
    "namespace": "test.fast",
    "fields": [
        {"name": "n", "type": "null"},
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": "string"},
        {"name": "by", "type": "bytes"},
        {"name": "fx", "type": {"type": "fixed", "name": "Hash", "size": 4}},
        {
            "name": "e",
            "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"], "default": "RED"},
        },
        {"name": "e_default", "type": "Color", "default": "GREEN"},
        {"name": "opt", "type": ["null", "string"], "default": None},
        {"name": "nested", "type": ["null", INNER], "default": None},
        {"name": "records", "type": {"type": "array", "items": "Inner"}},
        {"name": "by_name", "type": {"type": "map", "values": "Inner"}},
        {"name": "scores", "type": {"type": "map", "values": ["null", "double"]}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
        {
            "name": "opt_amount",
            "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 60, "scale": 4}],
            "default": None,
        },
        {
            "name": "fixed_amount",
            "type": {
                "type": "fixed",
                "name": "Money",
                "size": 8,
                "logicalType": "decimal",
                "precision": 18,
                "scale": 2,
            },
        },
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
    ],
}
INNER_VALUE = {"x": None, "tags": []}
BASE: dict[str, Any] = {
    "n": None,
    "b": True,
    "i": 1,
    "l": 2,
    "f": 1.5,
    "d": 2.5,
    "s": "s",
    "by": b"b",
    "fx": b"abcd",
    "e": "RED",
    "opt": None,
    "nested": None,
    "records": [],
    "by_name": {},
    "scores": {},
    "day": date(2024, 2, 29),
    "at": datetime(2024, 1, 1, tzinfo=UTC),
    "at_us": datetime(2024, 1, 1, tzinfo=UTC),
    "amount": Decimal("1.00"),
    "fixed_amount": Decimal("1.00"),
    "uid": "6f1e8b52-93a4-4c1b-9d3e-2a5b7c9d0e1f",
}
HANGUL = "서울특별시 종로구 세종대로 209"
STRINGS = ["", "a", HANGUL, "😀 emoji", "x" * 200, "\x00nul", "한"]


class ValueGenerator:
    """Random values for a fastavro-parsed schema: every branch, optional fields set and missing."""

    def __init__(self, schema: Any, seed: int) -> None:
        self.parsed, self.named = parse(schema)
        self.rng = random.Random(seed)

    def value(self) -> Any:
        """One random value of the schema."""
        return self.of(self.parsed, 0)

    def of(self, schema: Any, depth: int) -> Any:
        """A value of ``schema`` (``depth`` bounds nesting)."""
        if isinstance(schema, str):
            return self.of(self.named[schema], depth) if schema in self.named else self.primitive(schema)
        if isinstance(schema, list):
            branches = [b for b in schema if b != "null"] if depth > 3 else schema
            return self.of(self.rng.choice(branches or schema), depth + 1)
        if schema.get("logicalType") in ("date", "timestamp-millis", "timestamp-micros", "decimal", "uuid"):
            return self.logical(schema)
        kind = schema["type"]
        if kind == "record":
            return self.record(schema, depth)
        size = self.rng.randint(0, 3 if depth < 4 else 0)
        composite = {
            "enum": lambda: self.rng.choice(schema["symbols"]),
            "fixed": lambda: self.rng.randbytes(schema["size"]),
            "array": lambda: [self.of(schema["items"], depth + 1) for _ in range(size)],
            "map": lambda: {
                self.rng.choice(STRINGS) + str(i): self.of(schema["values"], depth + 1) for i in range(size)
            },
        }
        return composite[kind]() if kind in composite else self.primitive(kind)

    def record(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        """A record with every field, except optional ones left out one time in five."""
        record: dict[str, Any] = {}
        for field in schema["fields"]:
            optional = "default" in field or (isinstance(field["type"], list) and "null" in field["type"])
            if not optional or self.rng.random() >= 0.2:
                record[field["name"]] = self.of(field["type"], depth + 1)
        return record

    def logical(self, schema: Mapping[str, Any]) -> Any:
        """A date, timestamp (UTC, KST or raw number), decimal or UUID value."""
        rng, logical = self.rng, schema["logicalType"]
        if logical == "date":
            days = rng.randint(-40000, 40000)
            return rng.choice([date(2024, 1, 1) + timedelta(days=days), days])
        if logical == "decimal":
            digits = rng.randint(1, schema["precision"])
            unscaled = rng.randint(-(10**digits) + 1, 10**digits - 1)
            places = rng.randint(0, schema.get("scale", 0))
            if schema["type"] == "fixed" and abs(unscaled) * 10 ** (schema.get("scale", 0) - places) >= 2**63:
                unscaled = rng.randint(-(2**40), 2**40)
            return Decimal(unscaled).scaleb(-places)
        if logical == "uuid":
            return rng.choice([str(uuid.UUID(int=rng.getrandbits(128))), uuid.UUID(int=rng.getrandbits(128))])
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randint(-2_000_000_000, 4_000_000_000), microseconds=rng.randint(0, 999_999)
        )
        return rng.choice([moment, moment.astimezone(KST), rng.randint(-(2**40), 2**42)])

    def primitive(self, kind: str) -> Any:
        """A primitive value, edge values included."""
        rng = self.rng
        choices: dict[str, list[Any]] = {
            "null": [None],
            "boolean": [True, False],
            "int": [0, -1, 1, 63, -64, 64, -65, 2**31 - 1, -(2**31), rng.randint(-(2**31), 2**31 - 1)],
            "long": [0, -1, 2**63 - 1, -(2**63), 2**31, -(2**31) - 1, rng.randint(-(2**63), 2**63 - 1)],
            "float": [0.0, -0.0, 1.5, -2.25, math.inf, -math.inf, rng.uniform(-1e6, 1e6), 7],
            "string": STRINGS,
            "bytes": [b"", rng.randbytes(rng.randint(1, 20))],
        }
        return rng.choice(choices["float" if kind == "double" else kind])


def simulated_payloads() -> dict[str, list[dict[str, Any]]]:
    """Simulated payloads of every catalog event type, grouped by type."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in simulated_events("all", 6000, seed=31):
        grouped.setdefault(event.type, []).append(event.data)
    return grouped


# --------------------------------------------------------------------------------------------------
# byte-for-byte equality with fastavro


@needs_c
def test_every_catalog_event_type_matches_fastavro_on_simulated_payloads() -> None:
    """Every simulated event of every catalog type encodes to exactly fastavro's bytes."""
    grouped = simulated_payloads()
    assert {event.full_name for event in CATALOG} <= set(grouped)
    for event in CATALOG:
        encoder = compile_encoder(event.parsed)
        assert encoder.accelerated
        for payload in grouped[event.full_name]:
            assert encoder.encode(payload) == fastavro_bytes(event.parsed, payload), event.full_name


@needs_c
@pytest.mark.parametrize("event", CATALOG.events, ids=lambda e: e.name)
def test_catalog_event_type_matches_fastavro_on_generated_payloads(event: Any) -> None:
    """Random payloads built from the schema (decimals, dates, timestamps, optional fields) match."""
    encoder = compile_encoder(event.schema_text)
    generator = ValueGenerator(event.parsed, seed=hash(event.name) & 0xFFFF)
    for _ in range(300):
        payload = generator.value()
        assert encoder.encode(payload) == fastavro_bytes(event.parsed, payload), payload


@needs_c
def test_kitchen_sink_schema_matches_fastavro_on_generated_values() -> None:
    """Random values of a schema using every Avro type and supported logical type match fastavro."""
    encoder = compile_encoder(KITCHEN)
    generator = ValueGenerator(KITCHEN, seed=7)
    for _ in range(2000):
        value = generator.value()
        assert encoder.encode(value) == fastavro_bytes(KITCHEN, value), value


EDGE_CASES: list[tuple[str, Any]] = [
    *[("i", v) for v in (0, 1, -1, 63, -64, 64, -65, 2**31 - 1, -(2**31), True, False)],
    *[("l", v) for v in (2**63 - 1, -(2**63), 2**31, -(2**31) - 1, 2**56, -(2**56))],
    *[("f", v) for v in (0.0, -0.0, math.inf, -math.inf, math.nan, 3.4e38, 1e-45, 7, 1e39)],
    *[("d", v) for v in (math.nan, "NaN", "1.5", -0.0, 1e308, 5e-324, 2**53 + 1, Decimal("2.5"), True)],
    *[("s", v) for v in STRINGS],
    *[("by", v) for v in (b"", bytes(range(256)), bytearray(b"xy"), memoryview(b"mv"), b"\x00" * 128)],
    ("fx", bytearray(b"1234")),
    *[("e", v) for v in ("RED", "GREEN", "BLUE")],
    ("e_default", "BLUE"),
    *[("opt", v) for v in ("", "값", ("string", "tuple notation"), ("null", None))],
    ("nested", {"x": None, "tags": []}),
    ("nested", {"x": 5, "tags": ["a", "가"]}),
    ("nested", {"x": "str", "tags": ("t",)}),
    ("nested", {"x": 2**40, "tags": []}),
    ("nested", {"tags": ["x missing: written as null"]}),
    ("nested", OrderedDict([("tags", ["ordered"]), ("x", -3)])),
    ("records", [INNER_VALUE, {"x": "y", "tags": ["z"]}]),
    ("records", (INNER_VALUE for _ in range(3))),
    ("by_name", {"가": INNER_VALUE, "b": {"x": 1, "tags": ["c"]}}),
    ("by_name", OrderedDict([("k", INNER_VALUE)])),
    ("scores", {"a": None, "b": 1.5, "c": 3, "d": -0.0}),
    *[
        ("day", v)
        for v in (
            date(1970, 1, 1),
            date(1, 1, 1),
            date(9999, 12, 31),
            date(1969, 12, 31),
            datetime(2024, 2, 29, 23, 59),
            19800,
            -1,
            "2024-02-29",
        )
    ],
    *[
        (field, v)
        for field in ("at", "at_us")
        for v in (
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(2024, 5, 17, 8, 30, 1, 999_999, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(2024, 5, 17, 17, 30, tzinfo=KST),
            datetime(2024, 5, 17, 8, 30, 0, 1234),
            1_700_000_000_000,
            0,
            -1,
        )
    ],
    *[
        ("amount", Decimal(v))
        for v in (
            "0",
            "-0",
            "0.00",
            "123.45",
            "-123.45",
            "1",
            "-1",
            "1.27",
            "-1.28",
            "1.28",
            "-1.29",
            "1.5",
            "9999999999999999.99",
            "-9999999999999999.99",
            "-0.01",
            "1E+3",
            "327.67",
            "-327.68",
        )
    ],
    ("amount", b"\x01\x02"),
    *[
        ("opt_amount", Decimal(v))
        for v in (
            "12345678901234567890123456789012.3456",
            "-12345678901234567890123456789012.3456",
            "1" * 56,
            "-" + "9" * 56,
            "17014118346046923173168730371588410.5727",
        )
    ],
    *[
        ("fixed_amount", Decimal(v))
        for v in (
            "0",
            "-1",
            "123.45",
            "-123.45",
            "-9999999999999999.99",
            "9999999999999999.99",
            "0.5",
            "-1E+15",
        )
    ],
    ("fixed_amount", b"\x00" * 8),
    ("uid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
]


@needs_c
@pytest.mark.parametrize(("field", "value"), EDGE_CASES, ids=lambda v: repr(v)[:40])
def test_edge_values_match_fastavro(field: str, value: Any) -> None:
    """Bounds, special floats, empty and Korean text, decimals, dates and timestamps encode like fastavro."""
    if field == "records" and not isinstance(value, list):
        value_for_c, value_for_fastavro = value, [INNER_VALUE] * 3
    else:
        value_for_c = value_for_fastavro = value
    record = {**BASE, field: value_for_c}
    expected = fastavro_bytes(KITCHEN, {**BASE, field: value_for_fastavro})
    assert compile_encoder(KITCHEN).encode(record) == expected


@needs_c
def test_negative_zero_decimal_is_written_as_zero() -> None:
    """Decimal('-0') is zero in bytes and fixed decimals (fastavro writes -2 units for a fixed one)."""
    encoder = compile_encoder(KITCHEN)
    zero = encoder.encode({**BASE, "amount": Decimal("0"), "fixed_amount": Decimal("0")})
    assert encoder.encode({**BASE, "amount": Decimal("-0"), "fixed_amount": Decimal("-0.00")}) == zero
    assert zero.endswith(b"\x02\x00" + b"\x00" + b"\x00" * 8 + b"\x48" + BASE["uid"].encode())


@needs_c
def test_missing_fields_use_schema_defaults() -> None:
    """A missing field with a default (enum symbol, null) is written as the default, like fastavro."""
    record = {k: v for k, v in BASE.items() if k not in ("opt", "nested", "opt_amount")}
    assert "e_default" not in record
    assert compile_encoder(KITCHEN).encode(record) == fastavro_bytes(KITCHEN, record)


UNION_CASES: list[tuple[Any, Any]] = [
    (["null", "float", "double"], 1.5),
    (["null", "float", "double"], 2),
    (["double", "float"], 1.5),
    (["float", "string"], 1.5),
    (["int", "double"], 3),
    (["int", "double"], 3.5),
    (["boolean", "int"], True),
    (["boolean", "int"], 1),
    (["int", "long"], 5),
    (["int", "long"], 2**40),
    (["int", "long"], -(2**31) - 1),
    (["string", {"type": "enum", "name": "E", "symbols": ["A", "B"]}], "A"),
    ([{"type": "enum", "name": "E", "symbols": ["A", "B"]}, "string"], "A"),
    ([{"type": "enum", "name": "E", "symbols": ["A", "B"]}, "string"], "C"),
    (["null", "bytes", {"type": "fixed", "name": "F4", "size": 4}], b"abcd"),
    ([{"type": "fixed", "name": "F4", "size": 4}, "bytes"], b"abcd"),
    ([{"type": "fixed", "name": "F4", "size": 4}, "bytes"], b"abc"),
    (["null", {"type": "map", "values": "string"}, {"type": "array", "items": "int"}], {"a": "b"}),
    (["null", {"type": "map", "values": "string"}, {"type": "array", "items": "int"}], [1, 2]),
    (
        ["null", {"type": "array", "items": ["null", "int", {"type": "array", "items": "string"}]}],
        [None, 1, ["x"]],
    ),
    (["null", {"type": "int", "logicalType": "date"}], date(2000, 1, 1)),
    (["null", {"type": "int", "logicalType": "date"}], 10),
    (["null", "long", {"type": "long", "logicalType": "timestamp-millis"}], datetime(2020, 1, 1, tzinfo=UTC)),
    (["null", "long", {"type": "long", "logicalType": "timestamp-millis"}], 5),
    (["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}], Decimal("-3.14")),
    (["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}], b"\xff"),
    (["null", {"type": "string", "logicalType": "uuid"}], uuid.UUID(int=5)),
    (["null", "string"], ("string", "named")),
]


@needs_c
@pytest.mark.parametrize(("union", "value"), UNION_CASES, ids=lambda v: repr(v)[:50])
def test_union_branch_choice_matches_fastavro(union: list[Any], value: Any) -> None:
    """The union branch is chosen by fastavro's rules (first valid, float yields to double, tuples)."""
    schema = {"type": "record", "name": "U", "fields": [{"name": "u", "type": union}]}
    assert compile_encoder(schema).encode({"u": value}) == fastavro_bytes(schema, {"u": value})


A = {"type": "record", "name": "A", "fields": [{"name": "x", "type": ["null", "int"], "default": None}]}
B = {
    "type": "record",
    "name": "B",
    "fields": [
        {"name": "x", "type": ["null", "int"], "default": None},
        {"name": "y", "type": ["null", "int"], "default": None},
    ],
}
RECORD_UNIONS = {
    "type": "record",
    "name": "R",
    "namespace": "n",
    "fields": [
        {"name": "defs", "type": {"type": "array", "items": [A, B]}},
        {"name": "refs", "type": {"type": "array", "items": ["null", "n.A", "n.B"]}},
    ],
}


@needs_c
@pytest.mark.parametrize(
    "items",
    [
        [{"x": 1, "y": 2}, {"x": 1}, {}, {"y": 3}, {"z": 0}],
        [("n.B", {"x": 1}), ("n.A", {"x": 2})],
    ],
)
def test_record_branches_follow_fastavro_rules(items: list[Any]) -> None:
    """Inline record branches go to the most matching fields; named references to the first valid one."""
    value = {"defs": items, "refs": [None, *items]}
    assert compile_encoder(RECORD_UNIONS).encode(value) == fastavro_bytes(RECORD_UNIONS, value)


LINKED = {
    "type": "record",
    "name": "Node",
    "fields": [
        {"name": "value", "type": "int"},
        {"name": "next", "type": ["null", "Node"], "default": None},
    ],
}


@needs_c
def test_recursive_schema_encodes_like_fastavro() -> None:
    """A record that refers to itself (a linked list 100 deep) encodes like fastavro."""
    value: dict[str, Any] = {"value": 0}
    for i in range(1, 100):
        value = {"value": -i, "next": value}
    assert compile_encoder(LINKED).encode(value) == fastavro_bytes(LINKED, value)


@needs_c
@pytest.mark.parametrize(
    "schema", ["string", '"long"', {"type": "array", "items": "int"}, '["null", "string"]']
)
def test_non_record_top_level_schemas(schema: Any) -> None:
    """Primitive, array and union schemas at the top level, given as JSON text or objects, work too."""
    value = {"string": "값", '"long"': -(2**40), '["null", "string"]': None}.get(str(schema), [1, -2, 3])
    assert compile_encoder(schema).encode(value) == fastavro_bytes(parse(schema)[0], value)


@needs_c
def test_encode_framed_writes_prefix_then_body() -> None:
    """encode_framed is the prefix followed by encode, and matches the Confluent framing of schemas.codec."""
    moved = CATALOG.get("ResidentMoved")
    payload = simulated_payloads()[moved.full_name][0]
    encoder = compile_encoder(moved.parsed)
    framed = encoder.encode_framed(b"\x00\x00\x00\x01\x02", payload)
    assert (
        framed
        == b"\x00\x00\x00\x01\x02" + encoder.encode(payload)
        == codec_encode(258, moved.parsed, payload)
    )
    assert encoder.encode_framed(bytearray(b"\x00"), payload)[:1] == b"\x00"


# --------------------------------------------------------------------------------------------------
# errors

ERROR_CASES: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"s": 5}, TypeError, r"^s: expected str, got int$"),
    (
        {"records": [INNER_VALUE, {"x": None, "tags": ["a", 7]}]},
        TypeError,
        r"^records\[1\]\.tags\[1\]: expected str",
    ),
    ({"by_name": {"k": {"x": None, "tags": 5}}}, TypeError, r"^by_name\['k'\]\.tags: expected a list"),
    (
        {"nested": {"x": 1.5, "tags": []}},
        TypeError,
        r"^nested: expected None or record test\.fast\.Inner, got dict$",
    ),
    ({"nested": {"x": None}}, TypeError, r"^nested: expected None or"),
    ({"e": "PURPLE"}, ValueError, r"^e: 'PURPLE' is not a symbol of enum test\.fast\.Color$"),
    ({"e": 1}, TypeError, r"^e: expected a symbol of enum test\.fast\.Color"),
    ({"fx": b"abc"}, ValueError, r"^fx: expected 4 bytes for fixed test\.fast\.Hash, got 3$"),
    ({"l": 2**63}, ValueError, r"^l: 9223372036854775808 is out of range for an Avro long"),
    ({"l": "5"}, TypeError, r"^l: expected int, got str$"),
    ({"d": None}, TypeError, r"^d: expected float, got NoneType$"),
    ({"d": "many"}, ValueError, r"^d: could not convert string to float"),
    ({"by": "text"}, TypeError, r"^by: expected bytes, got str$"),
    ({"opt": 5}, TypeError, r"^opt: expected None or str, got int$"),
    ({"opt": ("int", 5)}, ValueError, r"^opt: provided union type name 'int' is not a branch"),
    ({"opt": (1, 2, 3)}, ValueError, r"^opt: a union value given as a tuple must be"),
    ({"amount": Decimal("1.234")}, ValueError, r"^amount: Scale provided in schema does not match"),
    ({"amount": Decimal("1" * 19)}, ValueError, r"^amount: The decimal precision is bigger"),
    ({"amount": Decimal("NaN")}, TypeError, r"^amount: cannot encode Decimal\('NaN'\)"),
    ({"fixed_amount": Decimal("1E+17")}, ValueError, r"^fixed_amount: decimal .* does not fit"),
    ({"day": "yesterday"}, ValueError, r"^day: Invalid isoformat string"),
    ({"at": "2024-01-01"}, TypeError, r"^at: expected int, got str$"),
    ({"s": "\ud800"}, ValueError, r"^s: .*surrogates not allowed"),
    ({"scores": {1: 1.0}}, TypeError, r"^scores: map keys must be str, got int$"),
    ({"scores": {"k": "x"}}, TypeError, r"^scores\['k'\]: expected None or float, got str$"),
    ({"records": "abc"}, TypeError, r"^records: expected a list for array, got str$"),
    ({"records": {"a": 1}}, TypeError, r"^records: expected a list for array, got dict$"),
    ({"by_name": [1]}, TypeError, r"^by_name: expected a dict for map, got list$"),
]


@needs_c
@pytest.mark.parametrize(("change", "error", "message"), ERROR_CASES, ids=lambda v: repr(v)[:40])
def test_wrong_values_raise_naming_the_field_path(
    change: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A value that does not fit raises ValueError or TypeError whose message starts with the field path."""
    with pytest.raises(error, match=message):
        compile_encoder(KITCHEN).encode({**BASE, **change})
    with pytest.raises((ValueError, TypeError, KeyError, AttributeError, OverflowError)):
        fastavro_bytes(KITCHEN, {**BASE, **change})


@needs_c
def test_missing_required_field_and_wrong_top_level_type() -> None:
    """A missing field without default, and a record that is not a dict, are refused with a clear message."""
    encoder = compile_encoder(KITCHEN)
    without_i = {k: v for k, v in BASE.items() if k != "i"}
    with pytest.raises(ValueError, match=r"^i: required field is missing"):
        encoder.encode(without_i)
    with pytest.raises(TypeError, match=r"^expected a dict for record test\.fast\.Kitchen, got list$"):
        encoder.encode([1])
    moved = compile_encoder(CATALOG.get("ResidentMoved").parsed)
    with pytest.raises(TypeError, match=r"^new_address\.postal_code: expected str, got int$"):
        moved.encode(
            {
                "resident_id": "R1",
                "new_address": {
                    "sido": "a",
                    "sigungu": "b",
                    "road_address": "c",
                    "postal_code": 3000,
                    "admin_code": "d",
                },
            }
        )


@needs_c
def test_self_referencing_value_raises_instead_of_crashing() -> None:
    """A value that contains itself hits the recursion limit and becomes a ValueError."""
    looped: dict[str, Any] = {"value": 1}
    looped["next"] = looped
    with pytest.raises(ValueError, match=r"^next: nested deeper than 500 levels"):
        compile_encoder(LINKED).encode(looped)


@needs_c
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("i", 1.5),
        ("i", 2**31),
        ("l", Decimal("4.2")),
        ("b", None),
        ("b", "no"),
        ("n", 0),
        ("records", "ab"),
        ("fixed_amount", Decimal("-1E+17")),
    ],
)
def test_refuses_values_fastavro_would_silently_mangle(field: str, value: Any) -> None:
    """Values fastavro writes as something else (a truncated float, a str as a bool) are refused."""
    schema = {"type": "record", "name": "M", "fields": [f for f in KITCHEN["fields"] if f["name"] == field]}
    if field == "records":
        schema = {
            "type": "record",
            "name": "M",
            "fields": [{"name": "records", "type": {"type": "array", "items": "string"}}],
        }
    fastavro_bytes(schema, {field: value})  # fastavro accepts it
    with pytest.raises((ValueError, TypeError), match=f"^{field}: "):
        compile_encoder(schema).encode({field: value})


@needs_c
def test_malformed_program_is_refused() -> None:
    """The extension refuses a malformed program (bad index, op, symbols or node) instead of crashing."""
    from schemas import _avro_fast

    for program, root in [
        ((), 0),
        (((6, 0, "string", 0, -1, 0, None, None, None, (), (), None, None, None),), 1),
        (((12, 0, "array", 0, -1, 0, None, None, None, (5,), (), None, None, None),), 0),
        (((99, 0, "x", 0, -1, 0, None, None, None, (), (), None, None, None),), 0),
        (((9, 0, "E", 0, -1, 0, None, None, ["A"], (), (), None, None, None),), 0),
        (("not a tuple",), 0),
    ]:
        with pytest.raises((ValueError, TypeError)):
            _avro_fast.Encoder(program, root)
    encoder = compile_encoder('"string"')
    with pytest.raises(RuntimeError, match="already initialised"):
        encoder.__init__(((6, 0, "string", 0, -1, 0, None, None, None, (), (), None, None, None),), 0)  # type: ignore[misc]
    assert encoder.encode("still works") == b"\x16still works"


# --------------------------------------------------------------------------------------------------
# the fallback


def test_pure_python_fallback_gives_fastavro_bytes() -> None:
    """Without the extension the encoder is fastavro's writer: same bytes, framing included."""
    grouped = simulated_payloads()
    for event in CATALOG:
        encoder = compile_encoder(event.parsed, accelerated=False)
        assert isinstance(encoder, PurePythonEncoder)
        assert not encoder.accelerated
        for payload in grouped[event.full_name][:50]:
            assert encoder.encode(payload) == fastavro_bytes(event.parsed, payload)
            assert encoder.encode_framed(b"\x00\x00\x00\x00\x07", payload) == codec_encode(
                7, event.parsed, payload
            )
    generator = ValueGenerator(KITCHEN, seed=3)
    kitchen = compile_encoder(KITCHEN, accelerated=False)
    for _ in range(200):
        value = generator.value()
        assert kitchen.encode(value) == fastavro_bytes(KITCHEN, value)


@needs_c
def test_fallback_and_extension_agree() -> None:
    """The C encoder and the pure-Python fallback produce identical bytes for the same values."""
    generator = ValueGenerator(KITCHEN, seed=11)
    fast, slow = compile_encoder(KITCHEN), compile_encoder(KITCHEN, accelerated=False)
    for _ in range(300):
        value = generator.value()
        assert fast.encode_framed(b"\x00\x00\x00\x00\x01", value) == slow.encode_framed(
            b"\x00\x00\x00\x00\x01", value
        )


def test_fallback_raises_only_value_or_type_errors() -> None:
    """fastavro's KeyError/AttributeError/OverflowError surface from the fallback as ValueError."""
    encoder = compile_encoder(KITCHEN, accelerated=False)
    with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract here
        encoder.encode({**BASE, "l": 2**64})
    with pytest.raises((ValueError, TypeError)):
        encoder.encode([1, 2])


def test_environment_can_disable_acceleration(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOVBUS_DISABLE_ACCELERATION=1 makes compile_encoder return the pure-Python encoder."""
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert isinstance(compile_encoder(KITCHEN), PurePythonEncoder)


def test_extension_is_built_when_required() -> None:
    """With GOVBUS_REQUIRE_ACCELERATION=1 (CI on machines with a compiler) the C extension must be built."""
    if os.environ.get("GOVBUS_REQUIRE_ACCELERATION") != "1":
        pytest.skip("set GOVBUS_REQUIRE_ACCELERATION=1 to require the C extension")
    assert ACCELERATED, "schemas._avro_fast is not built: run `pip install -e .` with a C compiler"
    assert compile_encoder(KITCHEN).accelerated


# --------------------------------------------------------------------------------------------------
# event ids


def test_new_event_id_is_a_time_ordered_version_7_uuid() -> None:
    """Ids are lowercase RFC 9562 version-7 UUIDs, never repeat, and their time part never goes back."""
    ids = [new_event_id() for _ in range(50_000)]
    assert all(UUID7.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids[:100]} == {7}
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert stamps == sorted(stamps)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_repeat_the_parents_ids() -> None:
    """After fork the child draws fresh random bytes instead of the parent's buffered ones."""
    new_event_id()  # fill the buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read)
        os.write(write, ",".join(new_event_id() for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    parent = {new_event_id() for _ in range(20)}
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    assert len(child) == 20
    assert not parent & child


# --------------------------------------------------------------------------------------------------
# the publisher's hot path


class _FakeRegistry:
    def lookup(self, subject: str, schema_text: str) -> int:
        return 258


class _RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.sent.append({"topic": topic, **kwargs})

    def poll(self, timeout: float) -> int:
        return 0

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        """Every topic exists (the metadata answer the publisher asks for before a topic's first event)."""
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None)})

    def flush(self, timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return True


class _RecordingPublisher(Publisher):
    def _start(self) -> Any:
        self._producer = _RecordingProducer()
        return self._producer


def test_publisher_sends_fastavro_bytes_and_refuses_bad_payloads_before_sending() -> None:
    """Publish frames fastavro's bytes with a v7 id; a bad payload is refused before anything is sent."""
    publisher = _RecordingPublisher(
        KafkaConnection("127.0.0.1:1"), _FakeRegistry(), CATALOG, "localgov", "urn:govbus:agency:localgov"
    )
    moved = CATALOG.get("ResidentMoved")
    payloads = simulated_payloads()[moved.full_name][:20]
    ids = [publisher.publish(moved.full_name, payload) for payload in payloads]
    producer = publisher._producer
    assert isinstance(producer, _RecordingProducer)
    assert [m["value"] for m in producer.sent] == [codec_encode(258, moved.parsed, p) for p in payloads]
    assert [dict(m["headers"])["ce_id"] for m in producer.sent] == ids
    assert all(UUID7.match(i) for i in ids)
    bad = {**payloads[0], "new_address": {**payloads[0]["new_address"], "postal_code": 3000}}
    problem = r"new_address\.postal_code: expected str, got int$" if ACCELERATED else r".*postal_code"
    with pytest.raises(
        SerializationError,
        match=r"^govbus\.localgov\.ResidentMoved: payload does not fit the schema: " + problem,
    ):
        publisher.publish(moved.full_name, bad)
    missing = {k: v for k, v in payloads[0].items() if k != "moved_on"}
    with pytest.raises(SerializationError, match=r"ResidentMoved: .*moved_on"):
        publisher.publish(moved.full_name, missing)
    assert len(producer.sent) == len(payloads)
    assert publisher.published == len(payloads)
