"""Avro binary decoding compiled once per schema, in C when ``schemas._avro_fast`` is built.

:func:`compile_decoder` turns a writer schema (JSON text, JSON-like or fastavro-parsed) into a
:class:`Decoder` whose values are exactly those of fastavro's ``schemaless_reader`` with that schema:
dicts for records (fields in schema order), lists, dicts, str, bytes, int, float, bool, None, enum
symbols as str, a union's branch value, and logical types converted by fastavro's rules (``date``,
tz-aware UTC ``datetime`` and ``Decimal`` computed in C; any other logical type, ``uuid`` included,
through fastavro's own ``LOGICAL_READERS`` function).

The C decoder interprets the program :func:`schemas.fast_encoder.compile_program` builds for the
encoder. fastavro decodes instead when the extension is not built, when ``GOVBUS_DISABLE_ACCELERATION``
is set, when the program cannot express the schema, and when a different reader schema is given (schema
resolution stays fastavro's).

Both raise :class:`TrailingBytesError` when bytes are left after the value and ``ValueError`` for any
other body that is not a value of the schema. The C decoder refuses a few corrupt bodies that fastavro
reads as something: a negative union or enum index (fastavro counts it from the end), a varint longer
than 64 bits (fastavro wraps it), and more than 2**20 array items that take no bytes (such as nulls) in
one body.
"""

from __future__ import annotations

import io
import os
from typing import Any, Protocol

from fastavro import schemaless_reader
from fastavro.read import LOGICAL_READERS

try:  # fastavro's own reader functions, as its logical_readers module picks them
    from fastavro import _logical_readers as stock
except ImportError:
    from fastavro import _logical_readers_py as stock  # type: ignore[no-redef]

from schemas import fast_encoder

try:
    from schemas import _avro_fast
except ImportError:  # no compiler on this machine: fastavro decodes
    _avro_fast = None  # type: ignore[assignment]

ACCELERATED: bool = fast_encoder.ACCELERATED and hasattr(_avro_fast, "Decoder")

# The logical types the C decoder converts itself, as long as fastavro's own function is registered.
_IN_C = {
    key: vars(stock)[name]
    for key, name in (
        ("int-date", "read_date"),
        ("long-timestamp-millis", "read_timestamp_millis"),
        ("long-timestamp-micros", "read_timestamp_micros"),
        ("bytes-decimal", "read_decimal"),
        ("fixed-decimal", "read_decimal"),
    )
}


class TrailingBytesError(ValueError):
    """Bytes are left over after the value: the body is not one value of the schema."""


class Decoder(Protocol):
    """Decodes Avro binary bodies of one schema."""

    @property
    def accelerated(self) -> bool:
        """True when the decoding runs in the C extension."""
        ...

    def decode(self, body: bytes | memoryview) -> Any:
        """The value of ``body``; TrailingBytesError or ValueError when it is not exactly one value."""
        ...


class PurePythonDecoder:
    """The fallback: fastavro's ``schemaless_reader``, resolving to ``reader_schema`` when one is given."""

    accelerated = False

    def __init__(self, writer_schema: Any, reader_schema: Any | None = None) -> None:
        self._writer = writer_schema
        self._reader = reader_schema

    def decode(self, body: bytes | memoryview) -> Any:
        """The value of ``body``; TrailingBytesError or ValueError when it is not exactly one value."""
        stream = io.BytesIO(body)
        try:
            value = schemaless_reader(stream, self._writer, self._reader)
        except Exception as exc:  # fastavro raises many types for a corrupt body
            raise ValueError(str(exc) or type(exc).__name__) from exc
        left = len(body) - stream.tell()
        if left:
            raise TrailingBytesError(f"{left} trailing bytes after the Avro body")
        return value


def compile_decoder(
    writer_schema: Any, reader_schema: Any | None = None, *, accelerated: bool | None = None
) -> Decoder:
    """A decoder for bodies written with ``writer_schema``: the C one when built (and not disabled).

    With a ``reader_schema`` that differs from the writer's, fastavro resolves one to the other.
    ``accelerated=False`` forces fastavro; ``True`` requires the C decoder (ImportError if the extension
    is not built). By default the C decoder is used when available, unless the environment sets
    ``GOVBUS_DISABLE_ACCELERATION=1``.
    """
    writer, named = fast_encoder.parse(writer_schema)
    if reader_schema is not None:
        reader, _ = fast_encoder.parse(reader_schema)
        if reader != writer:
            return PurePythonDecoder(writer, reader)
    if accelerated is None:
        accelerated = ACCELERATED and os.environ.get(fast_encoder.DISABLE_ENV, "") not in ("1", "true", "yes")
    elif accelerated and not ACCELERATED:
        raise ImportError("the schemas._avro_fast extension (with its decoder) is not built on this machine")
    if not accelerated:
        return PurePythonDecoder(writer)
    try:
        program, root = fast_encoder.compile_program(writer, named)
    except fast_encoder.UnsupportedSchemaError:
        return PurePythonDecoder(writer)
    decoder: Decoder = _avro_fast.Decoder(
        program, root, tuple(_logical_entry(spec) for spec in program), TrailingBytesError
    )
    return decoder


def _logical_entry(spec: tuple[Any, ...]) -> tuple[Any, bool] | None:
    """(fastavro's reader function, whether C may convert it) for a node with a logical type, else None.

    fastavro applies ``LOGICAL_READERS["<type>-<logicalType>"]`` to a schema with a ``logicalType``;
    the lookup happens here, once, so a reader registered before compiling is honoured.
    """
    schema = spec[7]
    if not isinstance(schema, dict):
        return None
    logical_type = schema.get("logicalType")
    if not isinstance(logical_type, str):
        return None
    key = f"{schema['type']}-{logical_type}"  # a node's schema has its kind as "type"
    reader = LOGICAL_READERS.get(key)
    if reader is None:
        return None
    return reader, _IN_C.get(key) is reader
