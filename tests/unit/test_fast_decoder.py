"""The compiled Avro decoder (C extension and fastavro fallback) against fastavro's schemaless_reader."""

from __future__ import annotations

import io
import json
import math
import os
import random
import uuid
from datetime import UTC, date, datetime, time
from typing import Any, cast

import fastavro
import pytest
from fastavro import schemaless_reader
from fastavro.read import LOGICAL_READERS

from bus.errors import SerializationError
from consumers.decoder import EventDecoder
from producers.simulators.simulation import simulated_events
from schemas import fast_encoder
from schemas.catalog import load_catalog
from schemas.codec import body_decoder, decode_body, decode_header, decode_with, encode, header
from schemas.envelope import CloudEvent
from schemas.fast_decoder import (
    ACCELERATED,
    Decoder,
    PurePythonDecoder,
    TrailingBytesError,
    compile_decoder,
)
from schemas.fast_encoder import compile_encoder, parse
from schemas.registry_client import RegistryClient
from tests.conformance import cases, typed_value
from tests.unit.test_fast_encoder import KITCHEN, LINKED, ValueGenerator, fastavro_bytes

needs_c = pytest.mark.skipif(not ACCELERATED, reason="schemas._avro_fast is not built on this machine")
CATALOG = load_catalog()


def c_decoder(schema: Any, reader_schema: Any | None = None) -> Decoder:
    """The C decoder for ``schema``, whatever GOVBUS_DISABLE_ACCELERATION says."""
    return compile_decoder(schema, reader_schema, accelerated=True)


def fastavro_value(schema: Any, body: bytes) -> Any:
    """What fastavro reads from ``body`` with ``schema`` as the writer's (and reader's) schema."""
    stream = io.BytesIO(body)
    value = schemaless_reader(stream, parse(schema)[0], None)
    assert stream.tell() == len(body), "fastavro left bytes over"
    return value


def assert_same(got: Any, want: Any, path: str = "") -> None:
    """Equal values of the same types all the way down: key order, Decimal exponents, tzinfo, NaN."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} is not {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), path
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), path
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"
        assert repr(got) == repr(want), f"{path}: {got!r} is not {want!r}"
        if isinstance(want, datetime):
            assert got.tzinfo is want.tzinfo, path


# --------------------------------------------------------------------------------------------------
# the same values as fastavro


@needs_c
def test_every_catalog_event_type_decodes_like_fastavro_on_simulated_events() -> None:
    """Every simulated event of every catalog type decodes to exactly fastavro's value, types included."""
    seen: set[str] = set()
    coders: dict[str, Any] = {}
    for event in simulated_events("all", 6000, seed=31):
        kind = CATALOG.get(event.type)
        if event.type not in coders:
            coders[event.type] = (compile_encoder(kind.parsed), c_decoder(kind.parsed))
        encoder, decoder = coders[event.type]
        assert decoder.accelerated
        body = encoder.encode(event.data)
        assert_same(decoder.decode(body), fastavro_value(kind.parsed, body), event.type)
        seen.add(event.type)
    assert {event.full_name for event in CATALOG} <= seen


@needs_c
@pytest.mark.parametrize("event", CATALOG.events, ids=lambda e: e.name)
def test_catalog_event_type_decodes_generated_payloads_like_fastavro(event: Any) -> None:
    """Random payloads of each catalog schema (edge numbers, optional fields absent) decode like fastavro."""
    decoder = c_decoder(event.schema_text)
    generator = ValueGenerator(event.parsed, seed=hash(event.name) & 0xFFFF)
    for _ in range(200):
        body = fastavro_bytes(event.parsed, generator.value())
        assert_same(decoder.decode(body), fastavro_value(event.parsed, body))


@needs_c
def test_kitchen_sink_schema_decodes_like_fastavro() -> None:
    """Random values of a schema with every Avro type and logical type (uuid too) decode like fastavro."""
    decoder = c_decoder(KITCHEN)
    generator = ValueGenerator(KITCHEN, seed=11)
    for _ in range(1000):
        body = fastavro_bytes(KITCHEN, generator.value())
        assert_same(decoder.decode(body), fastavro_value(KITCHEN, body))


# a top-level "bytes" value is the raw body (Confluent's rule in schemas.codec), not an Avro body
FRAMED = [
    case
    for case in cases("wire_format_vectors.json")
    if case["wire_hex"] is not None and case["schema"] != "bytes"
]


@needs_c
@pytest.mark.parametrize("case", FRAMED, ids=[case["id"] for case in FRAMED])
def test_conformance_vector_decodes_to_its_value(case: dict[str, Any]) -> None:
    """Each binary conformance vector's body decodes in C to its value and to fastavro's."""
    _, body = decode_header(bytes.fromhex(case["wire_hex"]))
    parsed = fastavro.parse_schema(case["schema"])
    value = c_decoder(parsed).decode(body)
    assert value == typed_value(case["value"])
    assert_same(value, fastavro_value(parsed, bytes(body)))


def logical_schema(kind: str, logical: str, **extra: Any) -> dict[str, Any]:
    """A one-field record whose field has a logical type."""
    field_type = {"type": kind, "logicalType": logical, **extra}
    if kind == "fixed":
        field_type["name"] = "F"
    return {"type": "record", "name": "L", "fields": [{"name": "v", "type": field_type}]}


def long_bytes(value: int) -> bytes:
    """The Avro zig-zag varint of ``value``."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def blob(data: bytes) -> bytes:
    """A length-prefixed Avro bytes value."""
    return long_bytes(len(data)) + data


LOGICAL_EDGES: list[tuple[dict[str, Any], bytes]] = [
    *[(logical_schema("int", "date"), long_bytes(v)) for v in (0, -1, -719162, 2932896, 19800)],
    *[
        (logical_schema("long", "timestamp-millis"), long_bytes(v))
        for v in (0, -1, 1, -62135596800000, 253402300799999, 1_700_000_000_123)
    ],
    *[
        (logical_schema("long", "timestamp-micros"), long_bytes(v))
        for v in (0, -1, -62135596800000000, 253402300799999999, 1_700_000_000_123_456)
    ],
    *[
        (logical_schema("bytes", "decimal", precision=precision, scale=scale), blob(raw))
        for precision, scale, raw in [
            (18, 0, b""),
            (18, 0, b"\x00"),
            (18, 2, b"\xff"),
            (18, 2, b"\x80"),
            (4, 2, (123456).to_bytes(3, "big")),  # more digits than the precision: fastavro rounds
            (38, 5, (-(2**127)).to_bytes(16, "big", signed=True)),
            (60, 4, (10**50 + 7).to_bytes(21, "big")),  # beyond 128 bits: fastavro's own function
            (1000, 999, (2**100).to_bytes(13, "big")),
            (1001, 1000, (5).to_bytes(1, "big")),  # a scale beyond 999: fastavro's own function
        ]
    ],
    *[
        (logical_schema("fixed", "decimal", precision=18, scale=2, size=8), v.to_bytes(8, "big", signed=True))
        for v in (0, -1, 2**63 - 1, -(2**63), 12345)
    ],
    (logical_schema("string", "uuid"), blob(b"6f1e8b52-93a4-4c1b-9d3e-2a5b7c9d0e1f")),
    (logical_schema("int", "time-millis"), long_bytes(45_296_789)),
    (logical_schema("long", "time-micros"), long_bytes(45_296_789_012)),
    (logical_schema("long", "local-timestamp-millis"), long_bytes(1_700_000_000_123)),
    (logical_schema("string", "no-such-logical-type"), blob(b"plain")),
]


@needs_c
@pytest.mark.parametrize(("schema", "body"), LOGICAL_EDGES)
def test_logical_type_edges_decode_like_fastavro(schema: dict[str, Any], body: bytes) -> None:
    """Dates and timestamps at years 1 and 9999, decimals of every width, other logical types: as fastavro."""
    assert_same(c_decoder(schema).decode(body), fastavro_value(schema, body))


@needs_c
def test_logical_values_have_fastavros_python_types() -> None:
    """date → date, timestamps → UTC datetime, decimal → Decimal with the scale, uuid → UUID."""
    day = c_decoder(logical_schema("int", "date")).decode(long_bytes(19800))["v"]
    assert day == date(2024, 3, 18)
    moment = c_decoder(logical_schema("long", "timestamp-millis")).decode(long_bytes(-1))["v"]
    assert moment == datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert moment.tzinfo is UTC
    money = logical_schema("bytes", "decimal", precision=18, scale=2)
    assert repr(c_decoder(money).decode(blob(b"\x00\xff"))["v"]) == "Decimal('2.55')"
    text = "6f1e8b52-93a4-4c1b-9d3e-2a5b7c9d0e1f"
    uid = c_decoder(logical_schema("string", "uuid")).decode(blob(text.encode()))["v"]
    assert uid == uuid.UUID(text)
    noon = c_decoder(logical_schema("int", "time-millis")).decode(long_bytes(43_200_000))
    assert noon["v"] == time(12)


@needs_c
def test_a_logical_reader_registered_with_fastavro_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function put in fastavro's LOGICAL_READERS before compiling replaces the C conversion."""
    monkeypatch.setitem(LOGICAL_READERS, "int-date", lambda data, *_: ("days", data))
    schema = logical_schema("int", "date")
    assert c_decoder(schema).decode(long_bytes(5)) == {"v": ("days", 5)}
    assert fastavro_value(schema, long_bytes(5)) == {"v": ("days", 5)}


@needs_c
def test_recursive_schema_decodes_like_fastavro() -> None:
    """A record that refers to itself (a linked list 100 deep) decodes like fastavro."""
    value: dict[str, Any] = {"value": 0}
    for i in range(1, 100):
        value = {"value": -i, "next": value}
    body = fastavro_bytes(LINKED, value)
    assert_same(c_decoder(LINKED).decode(body), fastavro_value(LINKED, body))


@needs_c
@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ("string", blob("값".encode())),
        ('"long"', long_bytes(-(2**63))),
        ("double", b"\x00\x00\x00\x00\x00\x00\xf8\x7f"),
        ("float", b"\x00\x00\xc0\x7f"),
        ("boolean", b"\x02"),  # fastavro reads any byte but 0 as true
        ({"type": "array", "items": "int"}, b"\x06\x02\x04\x06\x00"),
        ({"type": "array", "items": "int"}, b"\x03\x04\x02\x04\x02\x01\x02\x06\x00"),  # negative counts
        ({"type": "map", "values": "long"}, b"\x01\x04\x02a\x02\x00"),
        ({"type": "map", "values": "long"}, b"\x04\x02a\x02\x02a\x04\x00"),  # the last of two keys wins
        ({"type": "array", "items": "null"}, b"\x80\x01\x00"),
        ('["null", "string"]', b"\x00"),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, b"\x02"),
        ({"type": "fixed", "name": "H", "size": 3}, b"abc"),
        ({"type": "record", "name": "Empty", "fields": []}, b""),
        ("long", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),  # ten bytes: the largest varint
        ("long", b"\x80\x00"),  # zero in two bytes is still zero
    ],
)
def test_non_record_and_unusual_bodies_decode_like_fastavro(schema: Any, body: bytes) -> None:
    """Top-level primitives, arrays and maps (negative block counts too), unions, enums, NaN: as fastavro."""
    assert_same(c_decoder(schema).decode(body), fastavro_value(schema, body))


@needs_c
def test_decoder_reads_any_bytes_like_body() -> None:
    """bytes, bytearray and a memoryview slice (as decode_header returns) decode alike; str is refused."""
    decoder = c_decoder({"type": "array", "items": "string"})
    body = b"\x04\x02a\x02b\x00"
    framed = b"\x00\x00\x00\x00\x01" + body
    assert decoder.decode(body) == decoder.decode(bytearray(body)) == decoder.decode(memoryview(framed)[5:])
    with pytest.raises(TypeError):
        decoder.decode(cast(Any, "\x04\x02a\x02b\x00"))


# --------------------------------------------------------------------------------------------------
# corrupt bodies

KINDS = {
    "type": "record",
    "name": "K",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "u", "type": ["null", "long"]},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
        {"name": "a", "type": {"type": "array", "items": "long"}},
        {"name": "d", "type": {"type": "int", "logicalType": "date"}},
    ],
}


@needs_c
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r"^s: the body ends inside a varint at byte 0 \(truncated\)$"),
        (b"\x06ab", r"^s: a string of 3 bytes at byte 0 runs past the end of the body$"),
        (b"\x03ab", r"^s: negative length -2 for a string at byte 0"),
        (b"\x04\xff\xfe", r"^s: invalid UTF-8: 'utf-8' codec can't decode"),
        (b"\x00\x04", r"^u: union index 2 at byte 1 is not a branch of"),
        (b"\x00\x01", r"^u: union index -1 at byte 1 is not a branch"),
        (b"\x00\x00\x04", r"^e: enum index 2 at byte 2 is not a symbol of E \(2 symbols\)"),
        (b"\x00\x00\x00\x08\x02", r"^a: an array block of 4 items at byte 3 cannot fit in the 1 bytes left"),
        (b"\x00\x00\x00\x02" + b"\xff" * 9 + b"\x02", r"^a\[0\]: the varint at byte 4 is longer"),
        (b"\x00\x00\x00\x02\x80", r"^a\[0\]: the body ends inside a varint at byte 4"),
        (b"\x00\x00\x00\x00\xfe\xff\xff\xff\x0f", r"^d: date 2147483647 days from 1970-01-01 is outside"),
        (b"\x00\x00\x00\x00", r"^d: the body ends inside a varint at byte 4"),
    ],
)
def test_corrupt_bodies_raise_value_error_naming_the_place(body: bytes, message: str) -> None:
    """Truncation, bad lengths or UTF-8, bad union or enum indices, huge counts or varints: ValueError."""
    with pytest.raises(ValueError, match=message):
        c_decoder(KINDS).decode(body)


@needs_c
def test_trailing_bytes_raise_their_own_error() -> None:
    """Bytes after the value raise TrailingBytesError (a ValueError), which decode_body reports as before."""
    with pytest.raises(TrailingBytesError, match=r"^2 trailing bytes after the Avro body$"):
        c_decoder("int").decode(b"\x02\x00\x00")
    with pytest.raises(SerializationError, match=r"^1 trailing bytes after the Avro body$"):
        decode_body(b"\x02\x00", "int")
    with pytest.raises(SerializationError, match=r"^Avro body does not decode with its writer schema: "):
        decode_body(b"\x80", "int")


@needs_c
def test_nesting_deeper_than_the_limit_is_refused() -> None:
    """A linked list 600 deep is refused with ValueError rather than exhausting the C stack."""
    body = b"".join(b"\x00\x02" for _ in range(600)) + b"\x00\x00"
    with pytest.raises(ValueError, match="nested deeper than 500 levels"):
        c_decoder(LINKED).decode(body)


@needs_c
def test_arrays_of_empty_items_are_bounded() -> None:
    """An array claiming 2**40 nulls (no bytes each) is refused instead of filling memory."""
    with pytest.raises(ValueError, match="more than 1048576 empty items"):
        c_decoder({"type": "array", "items": "null"}).decode(long_bytes(2**40) + b"\x00")


FUZZ_SCHEMAS = [*(event.parsed for event in CATALOG), parse(KITCHEN)[0], parse(LINKED)[0]]


def check_fuzzed_body(schema: Any, decoder: Decoder, body: bytes) -> bool:
    """The codec raises SerializationError, or returns exactly what fastavro reads; True if it decoded."""
    try:
        value = decode_with(body, decoder)
    except SerializationError:
        return False
    assert_same(value, fastavro_value(schema, body))
    return True


@needs_c
@pytest.mark.parametrize("schema", FUZZ_SCHEMAS, ids=lambda s: str(s.get("name")))
def test_random_and_damaged_bodies_never_crash(schema: dict[str, Any]) -> None:
    """Random bytes, every truncation and random changes of valid bodies: an error or fastavro's value."""
    decoder = c_decoder(schema)
    rng = random.Random(str(schema.get("name")))
    generator = ValueGenerator(schema, seed=rng.randrange(2**16))
    decoded = 0
    for _ in range(3):
        body = fastavro_bytes(schema, generator.value())
        for end in range(len(body)):
            assert not check_fuzzed_body(schema, decoder, body[:end]), "a truncated body decoded"
        for _ in range(150):
            damaged = bytearray(body)
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            decoded += check_fuzzed_body(schema, decoder, bytes(damaged))
    for _ in range(500):
        decoded += check_fuzzed_body(schema, decoder, rng.randbytes(rng.randint(0, 96)))
    assert decoded > 0, "no damaged body decoded: the comparison with fastavro never ran"


# --------------------------------------------------------------------------------------------------
# fallbacks and the codec


def test_pure_python_decoder_reads_like_schemaless_reader() -> None:
    """Without the extension fastavro decodes, with the same errors for trailing and corrupt bodies."""
    decoder = compile_decoder(KITCHEN, accelerated=False)
    assert isinstance(decoder, PurePythonDecoder)
    assert not decoder.accelerated
    body = fastavro_bytes(KITCHEN, ValueGenerator(KITCHEN, seed=3).value())
    assert_same(decoder.decode(body), fastavro_value(KITCHEN, body))
    with pytest.raises(TrailingBytesError, match=r"^1 trailing bytes"):
        decoder.decode(body + b"\x00")
    with pytest.raises(ValueError, match=r"^(?!1 trailing)"):
        decoder.decode(body[:3])


def test_environment_can_disable_acceleration(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOVBUS_DISABLE_ACCELERATION=1 makes compile_decoder return fastavro's decoder."""
    monkeypatch.setenv(fast_encoder.DISABLE_ENV, "1")
    assert isinstance(compile_decoder(KITCHEN), PurePythonDecoder)


OLD = {"type": "record", "name": "V", "fields": [{"name": "a", "type": "int"}]}
NEW = {
    "type": "record",
    "name": "V",
    "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string", "default": "x"}],
}


def test_a_different_reader_schema_is_resolved_by_fastavro() -> None:
    """Writer and reader schemas that differ go through fastavro's resolution (defaults filled in)."""
    old, new = parse(OLD)[0], parse(NEW)[0]
    decoder = compile_decoder(old, new)
    assert isinstance(decoder, PurePythonDecoder)
    assert decoder.decode(b"\x04") == {"a": 2, "b": "x"} == decode_body(b"\x04", old, new)


@needs_c
def test_equal_reader_and_writer_schemas_use_the_c_decoder() -> None:
    """A reader schema equal to the writer's (or the same object) needs no resolution: C decodes."""
    moved = CATALOG.get("ResidentMoved")
    assert c_decoder(moved.parsed, parse(moved.schema_text)[0]).accelerated


@needs_c
def test_decode_body_compiles_the_c_decoder_once_per_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """body_decoder (behind decode_body) gives the C decoder, the same one for the same schema object."""
    monkeypatch.delenv(fast_encoder.DISABLE_ENV, raising=False)
    schema = parse(KITCHEN)[0]
    decoder = body_decoder(schema)
    assert decoder.accelerated
    assert body_decoder(schema) is decoder
    assert body_decoder(schema, schema) is decoder


@needs_c
def test_malformed_decoder_arguments_are_refused() -> None:
    """A logical table of the wrong length, a trailing error that is no ValueError, a second init: refused."""
    from schemas import _avro_fast  # only importable where the extension is built

    program, root = fast_encoder.compile_program(*parse(KITCHEN))
    with pytest.raises(ValueError, match="one logical entry per node"):
        _avro_fast.Decoder(program, root, (), TrailingBytesError)
    with pytest.raises(TypeError, match="subclass of ValueError"):
        _avro_fast.Decoder(program, root, (None,) * len(program), cast(Any, KeyError))
    with pytest.raises(TypeError, match="callable"):
        _avro_fast.Decoder(program, root, ((1, True),) * len(program), TrailingBytesError)
    decoder = _avro_fast.Decoder(program, root, (None,) * len(program), TrailingBytesError)
    with pytest.raises(RuntimeError, match="already initialised"):
        decoder.__init__(program, root, (None,) * len(program), TrailingBytesError)  # type: ignore[misc]


def test_decoder_is_built_when_required() -> None:
    """With GOVBUS_REQUIRE_ACCELERATION=1 (CI on machines with a compiler) the C decoder must be built."""
    if os.environ.get("GOVBUS_REQUIRE_ACCELERATION") != "1":
        pytest.skip("set GOVBUS_REQUIRE_ACCELERATION=1 to require the C extension")
    assert ACCELERATED, "schemas._avro_fast has no Decoder: run `pip install -e .` with a C compiler"
    assert c_decoder(KITCHEN).accelerated


# --------------------------------------------------------------------------------------------------
# the consumer's EventDecoder


class FakeRegistry:
    """Schema texts by id, as the registry client returns them."""

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts

    def schema_text(self, schema_id: int) -> str:
        """The schema registered under ``schema_id``."""
        return self.texts[schema_id]


class FakeMessage:
    """The parts of a Kafka message the decoder reads."""

    def __init__(self, value: bytes, headers: Any) -> None:
        self._value, self._headers = value, headers

    def value(self) -> bytes:
        """The wire-format value."""
        return self._value

    def headers(self) -> Any:
        """The record's headers."""
        return self._headers

    def topic(self) -> str:
        """The topic it came from."""
        return "finance.benefit"

    def partition(self) -> int:
        """Its partition."""
        return 2

    def offset(self) -> int:
        """Its offset."""
        return 41


def event_decoder(texts: dict[int, str]) -> EventDecoder:
    """An EventDecoder over a fake registry holding ``texts``."""
    return EventDecoder(cast(RegistryClient, FakeRegistry(texts)), CATALOG)


def benefit_paid() -> tuple[Any, dict[str, Any]]:
    """The BenefitPaid event type and one simulated payload."""
    kind = CATALOG.get("BenefitPaid")
    payload = next(e.data for e in simulated_events("all", 3000, seed=5) if e.type == kind.full_name)
    return kind, payload


def publisher_headers(kind: Any, moment: str = "2024-05-01T09:00:00.123Z") -> list[tuple[str, bytes]]:
    """Headers in the order the publisher writes them (not CloudEvent.headers' order)."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_source", b"urn:govbus:finance"),
        ("ce_type", kind.full_name.encode()),
        ("content-type", b"application/avro"),
        ("ce_id", b"e-1"),
        ("ce_time", moment.encode()),
    ]


def test_event_decoder_reads_headers_in_any_order_and_the_body_like_fastavro() -> None:
    """Publisher-ordered and CloudEvent-ordered headers give the same attributes; data is fastavro's."""
    kind, payload = benefit_paid()
    value = encode(9, kind.parsed, payload)
    decoder = event_decoder({9: kind.schema_text})
    envelope = CloudEvent(source="urn:govbus:finance", type=kind.full_name, id="e-1")
    for headers in (publisher_headers(kind), envelope.headers()):
        event = decoder.decode(cast(Any, FakeMessage(value, headers)))
        assert (event.type, event.id, event.source) == (kind.full_name, "e-1", "urn:govbus:finance")
        assert (event.topic, event.partition, event.offset) == ("finance.benefit", 2, 41)
        assert_same(event.data, fastavro_value(kind.parsed, value[5:]))
    first = decoder.decode(cast(Any, FakeMessage(value, publisher_headers(kind))))
    assert first.time == datetime(2024, 5, 1, 9, 0, 0, 123000, tzinfo=UTC)


def test_event_decoder_falls_back_to_the_envelope_parser_for_unusual_headers() -> None:
    """str header values parse too; a missing attribute is a SerializationError naming it."""
    kind, payload = benefit_paid()
    value = encode(9, kind.parsed, payload)
    decoder = event_decoder({9: kind.schema_text})
    as_text = [(name, raw.decode()) for name, raw in publisher_headers(kind)]
    assert decoder.decode(cast(Any, FakeMessage(value, as_text))).id == "e-1"
    without_time = [h for h in publisher_headers(kind) if h[0] != "ce_time"]
    with pytest.raises(SerializationError, match="missing CloudEvents headers: ce_time"):
        decoder.decode(cast(Any, FakeMessage(value, without_time)))
    with pytest.raises(SerializationError, match="missing CloudEvents headers"):
        decoder.decode(cast(Any, FakeMessage(value, None)))


def test_event_decoder_refuses_corrupt_bodies() -> None:
    """A truncated body and one with trailing bytes are SerializationErrors, as with fastavro."""
    kind, payload = benefit_paid()
    value = encode(9, kind.parsed, payload)
    decoder = event_decoder({9: kind.schema_text})
    with pytest.raises(SerializationError, match="does not decode with its writer schema"):
        decoder.decode(cast(Any, FakeMessage(value[:-3], publisher_headers(kind))))
    with pytest.raises(SerializationError, match=r"^1 trailing bytes after the Avro body$"):
        decoder.decode(cast(Any, FakeMessage(value + b"\x00", publisher_headers(kind))))


def test_event_decoder_resolves_another_writer_schema() -> None:
    """A body written with a newer version of the schema (one more field) is resolved by fastavro."""
    kind, payload = benefit_paid()
    note = {"name": "note", "type": "string", "default": ""}
    newer = {**kind.schema, "fields": [*kind.schema["fields"], note]}
    body = fastavro_bytes(newer, {**payload, "note": "added in version 2"})
    decoder = event_decoder({5: json.dumps(newer)})
    event = decoder.decode(cast(Any, FakeMessage(header(5) + body, publisher_headers(kind))))
    assert_same(event.data, fastavro_value(kind.parsed, fastavro_bytes(kind.parsed, payload)))
