"""Avro binary encoding compiled once per schema, in C when ``schemas._avro_fast`` is built.

:func:`compile_encoder` turns a schema (JSON text, a JSON-like dict/list or a fastavro-parsed schema) into
an :class:`Encoder`. With the optional C extension (built by ``pip install -e .`` when a compiler is
available) the schema is compiled here into a flat "program" of node tuples that the extension interprets;
without it, or for a schema the program cannot express, the encoder falls back to fastavro's
``schemaless_writer``. Either way the bytes are fastavro's, byte for byte, for every valid value
(one exception: ``Decimal("-0")`` in a ``fixed`` decimal is written as zero; fastavro writes -2 units).

Both raise ``ValueError`` or ``TypeError`` for a value that does not fit. The C encoder names the field
path (``new_address.postal_code: expected str, got int``) and refuses a few values fastavro would
silently mangle: a float or an out-of-range number for ``int``/``long``, a non-bool for ``boolean``, a
non-None for ``null``, a str or dict for an array, a negative decimal that overflows its ``fixed``.

:data:`fast_event_id` is the C UUID generator when built (``schemas.envelope.new_event_id`` uses it).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeGuard, cast

import fastavro
from fastavro import schemaless_writer
from fastavro.logical_writers import LOGICAL_WRITERS

from schemas.avro_types import NAMED, PRIMITIVES, RECORDS

try:
    from schemas import _avro_fast
except ImportError:  # no compiler on this machine: the pure-Python path below
    _avro_fast = None  # type: ignore[assignment]

PROGRAM_FORMAT = 1
ACCELERATED: bool = _avro_fast is not None and getattr(_avro_fast, "PROGRAM_FORMAT", None) == PROGRAM_FORMAT
DISABLE_ENV = "GOVBUS_DISABLE_ACCELERATION"

# Opcodes and logical-type codes shared with _avro_fast.c.
_OPS = {
    "null": 0,
    "boolean": 1,
    "int": 2,
    "long": 3,
    "float": 4,
    "double": 5,
    "string": 6,
    "bytes": 7,
    "fixed": 8,
    "enum": 9,
    "record": 10,
    "error": 10,
    "union": 11,
    "array": 12,
    "map": 13,
}
_LT_NONE, _LT_DATE, _LT_TS_MILLIS, _LT_TS_MICROS, _LT_DECIMAL, _LT_FIXED_DECIMAL, _LT_PYTHON = range(7)
_LOGICAL_CODES = {
    "int-date": _LT_DATE,
    "long-timestamp-millis": _LT_TS_MILLIS,
    "long-timestamp-micros": _LT_TS_MICROS,
    "bytes-decimal": _LT_DECIMAL,
    "fixed-decimal": _LT_FIXED_DECIMAL,
}


class Encoder(Protocol):
    """Encodes values of one schema to Avro binary."""

    @property
    def accelerated(self) -> bool:
        """True when the encoding runs in the C extension."""
        ...

    def encode(self, record: Any) -> bytes:
        """The Avro binary encoding of ``record``; ValueError or TypeError when it does not fit."""
        ...

    def encode_framed(self, prefix: bytes, record: Any) -> bytes:
        """``prefix`` (e.g. the 5-byte Confluent header) followed by the encoding of ``record``."""
        ...


class PurePythonEncoder:
    """The fallback: fastavro's ``schemaless_writer`` with the schema parsed once."""

    accelerated = False

    def __init__(self, parsed_schema: Any) -> None:
        self._schema = parsed_schema

    def encode(self, record: Any) -> bytes:
        """The Avro binary encoding of ``record``; ValueError or TypeError when it does not fit."""
        buffer = io.BytesIO()
        self._write(buffer, record)
        return buffer.getvalue()

    def encode_framed(self, prefix: bytes, record: Any) -> bytes:
        """``prefix`` followed by the encoding of ``record``."""
        buffer = io.BytesIO()
        buffer.write(prefix)
        self._write(buffer, record)
        return buffer.getvalue()

    def _write(self, buffer: io.BytesIO, record: Any) -> None:
        try:
            schemaless_writer(buffer, self._schema, record)
        except (KeyError, AttributeError, OverflowError, RecursionError) as exc:
            raise ValueError(str(exc)) from exc


def parse(schema: Any) -> tuple[Any, dict[str, Any]]:
    """The fastavro-parsed form of ``schema`` (JSON text, JSON-like or parsed) and its named types."""
    if isinstance(schema, str) and schema.lstrip()[:1] in ("{", "[", '"'):
        schema = json.loads(schema)
    named: dict[str, Any] = {}
    parsed = fastavro.parse_schema(schema, named)
    return parsed, named


def compile_encoder(schema: Any, *, accelerated: bool | None = None) -> Encoder:
    """An encoder for ``schema``: the C one when built (and not disabled), else fastavro's.

    ``accelerated=False`` forces the pure-Python encoder; ``True`` requires the C one (ImportError if
    the extension is not built). By default the C encoder is used when available, unless the
    environment sets ``GOVBUS_DISABLE_ACCELERATION=1``.
    """
    parsed, named = parse(schema)
    if accelerated is None:
        accelerated = ACCELERATED and os.environ.get(DISABLE_ENV, "") not in ("1", "true", "yes")
    elif accelerated and not ACCELERATED:
        raise ImportError("the schemas._avro_fast extension is not built on this machine")
    if not accelerated:
        return PurePythonEncoder(parsed)
    try:
        program, root = compile_program(parsed, named)
    except UnsupportedSchemaError:
        return PurePythonEncoder(parsed)
    return cast(Encoder, _avro_fast.Encoder(program, root))


fast_event_id: Callable[[], str] | None = _avro_fast.new_event_id if ACCELERATED else None
"""The C extension's random version-4 UUID generator, None when it is not built."""


class UnsupportedSchemaError(Exception):
    """The schema uses something the C program cannot express; the caller falls back to fastavro."""


def compile_program(parsed: Any, named: Mapping[str, Any]) -> tuple[tuple[tuple[Any, ...], ...], int]:
    """The node tuples (see ``load_node`` in _avro_fast.c) for a fastavro-parsed schema, and the root."""
    compiler = _Compiler(named)
    root = compiler.node(parsed)
    return tuple(tuple(spec) for spec in compiler.nodes), root


class _Compiler:
    """Builds the node list; a named type gets its index before its children, so recursion is a cycle."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.nodes: list[list[Any]] = []
        self.by_name: dict[str, int] = {}
        self.primitives: dict[str, int] = {}

    def node(self, schema: Any) -> int:
        if isinstance(schema, str):
            return self._named_or_primitive(schema)
        if isinstance(schema, list):
            return self._union(schema)
        if not isinstance(schema, dict):
            raise UnsupportedSchemaError(f"schema {schema!r}")
        kind = schema.get("type")
        if isinstance(kind, list | dict):
            return self.node(kind)
        if not isinstance(kind, str):
            raise UnsupportedSchemaError(f"type {kind!r}")
        name = schema.get("name")
        if kind in NAMED and isinstance(name, str) and name in self.by_name:
            return self.by_name[name]
        if kind not in _OPS or kind == "union":
            return self._named_or_primitive(kind)  # {"type": "some.Named"}
        return self._complex(kind, schema)

    def _complex(self, kind: str, schema: Mapping[str, Any]) -> int:
        logical, prepare = self._logical(kind, schema)
        index = self._add(
            kind, str(schema.get("name", kind)), logical=logical, prepare=prepare, schema=schema
        )
        spec = self.nodes[index]
        if kind in NAMED:
            self.by_name[str(schema["name"])] = index
        if kind == "fixed":
            spec[3] = int(schema["size"])
        if logical in (_LT_DECIMAL, _LT_FIXED_DECIMAL):
            precision, scale = schema.get("precision"), schema.get("scale", 0)
            if _is_int(precision) and _is_int(scale) and 0 < precision < 2**31 and 0 <= scale < 2**31:
                spec[4], spec[5] = precision, scale  # else fastavro's own function handles (and refuses) it
        if kind == "enum":
            spec[8] = {str(symbol): i for i, symbol in enumerate(schema["symbols"])}
        elif kind in RECORDS:
            spec[10] = tuple(self._field(f) for f in schema["fields"])
        elif kind in ("array", "map"):
            spec[9] = (self.node(schema["items" if kind == "array" else "values"]),)
        return index

    def _named_or_primitive(self, name: str) -> int:
        if name in PRIMITIVES:
            if name not in self.primitives:
                self.primitives[name] = self._add(name, name)
            return self.primitives[name]
        if name in self.by_name:
            return self.by_name[name]
        if name in self.named:
            return self.node(self.named[name])
        raise UnsupportedSchemaError(f"unknown type {name!r}")

    def _field(self, field: Mapping[str, Any]) -> tuple[Any, ...]:
        field_type = field["type"]
        has_default = "default" in field
        return (
            str(field["name"]),
            self.node(field_type),
            has_default,
            field.get("default"),
            # fastavro writes None for a missing field without default when "null" is in its type
            not has_default and _contains_null(field_type),
            isinstance(field_type, str) and field_type in ("float", "double"),
        )

    def _union(self, branches: list[Any]) -> int:
        index = self._add("union", "")
        children, write_names, check_names, inline, described = [], [], [], [], []
        for branch in branches:
            children.append(self.node(branch))
            kind = branch.get("type") if isinstance(branch, dict) else branch
            if isinstance(branch, dict) and kind in NAMED:
                write_names.append(branch["name"])
            elif isinstance(branch, dict):
                write_names.append(kind if isinstance(kind, str) else None)
            else:
                write_names.append(branch)
            # fastavro's validation compares inline records by name and other branches as given
            if isinstance(branch, dict):
                check_names.append(branch["name"] if kind in RECORDS else None)
            else:
                check_names.append(branch)
            # fastavro picks among valid record branches (inline or named) by most matching fields
            inline.append(self.nodes[children[-1]][0] == _OPS["record"])
            described.append(_describe(branch, self.named))
        spec = self.nodes[index]
        spec[2] = " or ".join(dict.fromkeys(described))
        spec[9] = tuple(children)
        spec[11], spec[12], spec[13] = tuple(write_names), tuple(check_names), tuple(inline)
        return index

    def _logical(self, kind: str, schema: Mapping[str, Any]) -> tuple[int, Any]:
        logical_type = schema.get("logicalType")
        if not logical_type:
            return _LT_NONE, None
        key = f"{kind}-{logical_type}"
        prepare = LOGICAL_WRITERS.get(key)
        if prepare is None:
            return _LT_NONE, None
        return _LOGICAL_CODES.get(key, _LT_PYTHON), prepare

    def _add(
        self, kind: str, name: str, *, logical: int = _LT_NONE, prepare: Any = None, schema: Any = None
    ) -> int:
        self.nodes.append(
            [_OPS[kind], logical, name, 0, -1, 0, prepare, schema, None, (), (), None, None, None]
        )
        return len(self.nodes) - 1


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _contains_null(field_type: Any) -> bool:
    try:
        return "null" in field_type
    except TypeError:
        return False


def _describe(branch: Any, named: Mapping[str, Any]) -> str:
    """A union branch as named in messages: ``None``, ``str``, ``record X``..."""
    if isinstance(branch, str) and branch in named:
        return f"{named[branch].get('type')} {branch}"
    kind = str(branch.get("type") if isinstance(branch, dict) else branch)
    python = {
        "null": "None",
        "boolean": "bool",
        "int": "int",
        "long": "int",
        "float": "float",
        "double": "float",
        "string": "str",
        "bytes": "bytes",
        "array": "list",
        "map": "dict",
    }
    if isinstance(branch, dict) and branch.get("logicalType"):
        return f"{python.get(kind, kind)} ({branch['logicalType']})"
    if isinstance(branch, dict) and kind in NAMED:
        return f"{kind} {branch['name']}"
    return python.get(kind, f"{kind}")
