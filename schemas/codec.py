"""Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro binary body.

Two rules follow Confluent's serializers rather than plain Avro: a value of a top-level ``"bytes"``
schema is written as the raw bytes, without Avro's length prefix, and a ``None`` value is a Kafka
tombstone: :func:`encode_value` returns ``None`` and nothing is framed.

Third-party failures are wrapped in :class:`~bus.errors.SerializationError` with the cause chained.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from bus.errors import SerializationError

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
    if writer_schema == "bytes" and reader_schema in (None, "bytes"):
        return bytes(body)
    stream = io.BytesIO(body)
    try:
        value = schemaless_reader(stream, writer_schema, reader_schema)
    except Exception as exc:  # fastavro raises many types for corrupt input
        raise SerializationError(f"Avro body does not decode with its writer schema: {exc}") from exc
    if stream.tell() != len(body):
        raise SerializationError(f"{len(body) - stream.tell()} trailing bytes after the Avro body")
    return value
