"""Confluent wire-format framing around fastavro bodies."""

from __future__ import annotations

import pytest

from bus.errors import SerializationError
from schemas.catalog import load_catalog
from schemas.codec import decode_body, decode_header, encode, header

RECORD = {
    "resident_id": "R000000000001",
    "new_address": {
        "sido": "서울특별시",
        "sigungu": "종로구",
        "road_address": "종로 1",
        "detail": None,
        "postal_code": "03000",
        "admin_code": "1111010100",
    },
    "moved_on": 19800,
    "reported_on": 19801,
    "receiving_office": "3000000",
}


def test_encode_frames_magic_byte_and_big_endian_id() -> None:
    """The first five bytes are magic 0 and the schema id in big-endian order."""
    moved = load_catalog().get("ResidentMoved")
    data = encode(258, moved.parsed, RECORD)
    assert data[:5] == b"\x00\x00\x00\x01\x02" == header(258)


def test_round_trip_returns_the_value() -> None:
    """Decoding an encoded record gives the same schema id and field values back."""
    moved = load_catalog().get("ResidentMoved")
    schema_id, body = decode_header(encode(7, moved.parsed, RECORD))
    value = decode_body(body, moved.parsed)
    assert schema_id == 7
    assert value["new_address"] == RECORD["new_address"]
    assert value["moved_on"].toordinal() - 719163 == 19800


def test_value_that_does_not_fit_raises_serialization_error() -> None:
    """A record missing a required field is refused with the cause chained."""
    moved = load_catalog().get("ResidentMoved")
    with pytest.raises(SerializationError, match="schema id 3") as info:
        encode(3, moved.parsed, {"resident_id": "R1"})
    assert info.value.__cause__ is not None


def test_short_or_foreign_messages_are_refused() -> None:
    """Bytes shorter than the header or with another magic byte are not wire format."""
    with pytest.raises(SerializationError, match="shorter"):
        decode_header(b"\x00\x00")
    with pytest.raises(SerializationError, match="magic byte 1"):
        decode_header(b"\x01\x00\x00\x00\x01\x02")


def test_trailing_bytes_are_refused() -> None:
    """A body with bytes left over after the record is corrupt."""
    with pytest.raises(SerializationError, match="trailing"):
        decode_body(b"\x02\x00", "int")
