"""Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro binary body.

Two rules follow Confluent's serializers rather than plain Avro: a value of a top-level ``"bytes"``
schema is written as the raw bytes, without Avro's length prefix, and a ``None`` value is a Kafka
tombstone: :func:`encode_value` returns ``None`` and nothing is framed.

Bodies are read by a :mod:`schemas.fast_decoder` decoder compiled once per writer schema (C when the
extension is built, fastavro otherwise or when a different reader schema needs resolution).

Third-party failures are wrapped in :class:`~bus.errors.SerializationError` with the cause chained.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from fastavro import schemaless_writer

from bus.errors import SerializationError
from schemas.fast_decoder import Decoder, TrailingBytesError, compile_decoder

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")


def header(schema_id: int) -> bytes:
    """The five framing bytes for ``schema_id``."""
    return HEADER.pack(MAGIC_BYTE, schema_id)


def encode_value(schema_id: int, parsed_schema: Any, value: Any) -> bytes | None:
    """Like :func:`encode`, but a ``None`` value is a tombstone: ``None``, not a framed null."""
    return None if value is None else encode(schema_id, parsed_schema, value)


def encode(schema_id: int, parsed_schema: Any, value: Any) -> bytes:
    """Frame ``value`` written with ``parsed_schema`` (a fastavro-parsed schema)."""
    buffer = io.BytesIO()
    buffer.write(header(schema_id))
    if parsed_schema == "bytes":
        if not isinstance(value, bytes | bytearray | memoryview):
            raise SerializationError(f"value for schema id {schema_id} is not bytes: {type(value).__name__}")
        return buffer.getvalue() + bytes(value)
    try:
        schemaless_writer(buffer, parsed_schema, value)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise SerializationError(f"value does not fit schema id {schema_id}: {exc}") from exc
    return buffer.getvalue()


def decode_header(data: bytes) -> tuple[int, memoryview]:
    """Split a wire-format message into its schema id and Avro body."""
    if len(data) < HEADER.size:
        raise SerializationError(
            f"message of {len(data)} bytes is shorter than the 5-byte wire-format header"
        )
    magic, schema_id = HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise SerializationError(f"unknown magic byte {magic}; expected {MAGIC_BYTE} (Confluent wire format)")
    return schema_id, memoryview(data)[HEADER.size :]


def decode_body(body: bytes | memoryview, writer_schema: Any, reader_schema: Any | None = None) -> Any:
    """Read an Avro body written with ``writer_schema``, resolved to ``reader_schema`` when given."""
    return decode_with(body, body_decoder(writer_schema, reader_schema))


def decode_with(body: bytes | memoryview, decoder: Decoder) -> Any:
    """Read an Avro body with a decoder from :func:`body_decoder`; SerializationError when it is corrupt."""
    try:
        return decoder.decode(body)
    except TrailingBytesError as exc:
        raise SerializationError(str(exc)) from None
    except Exception as exc:
        raise SerializationError(f"Avro body does not decode with its writer schema: {exc}") from exc


class _RawBytes:
    """A top-level ``"bytes"`` schema: the body is the value (Confluent's rule, as in :func:`encode`)."""

    accelerated = False

    def decode(self, body: bytes | memoryview) -> bytes:
        return bytes(body)


_RAW_BYTES = _RawBytes()
_CACHE_SIZE = 256
_decoders: dict[tuple[int, int], tuple[Any, Any, Decoder]] = {}


def body_decoder(writer_schema: Any, reader_schema: Any | None = None) -> Decoder:
    """The decoder for bodies written with ``writer_schema`` (fastavro-parsed), read as ``reader_schema``.

    Compiled once per pair of schema objects: cached by identity (the cache keeps the schemas alive, so
    an id is not reused while it is cached), at most 256 pairs.
    """
    if writer_schema == "bytes" and reader_schema in (None, "bytes"):
        return _RAW_BYTES
    if reader_schema is writer_schema:
        reader_schema = None
    key = (id(writer_schema), id(reader_schema))
    cached = _decoders.get(key)
    if cached is not None:
        return cached[2]
    try:
        decoder = compile_decoder(writer_schema, reader_schema)
    except Exception as exc:  # fastavro raises many types for a schema it cannot parse
        raise SerializationError(f"cannot read bodies with this schema: {exc}") from exc
    if len(_decoders) >= _CACHE_SIZE:
        _decoders.clear()
    _decoders[key] = (writer_schema, reader_schema, decoder)
    return decoder
