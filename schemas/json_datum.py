"""An event's payload as JSON → the Python values the Avro encoder takes, guided by the schema.

JSON has no dates, decimals or byte strings, so the publish API takes them as text and this module turns
them into what :meth:`~producers.publisher.Publisher.publish` expects:

- ``date``: ``"2024-03-01"`` → :class:`datetime.date`;
- ``timestamp-millis``: an RFC 3339 time with an offset (``"2024-03-01T09:00:00+09:00"``) or integer
  milliseconds since the epoch → an aware :class:`datetime.datetime`;
- ``decimal``: a string (``"1250000.00"``) or an integer → :class:`decimal.Decimal` (floats are refused:
  money is never binary floating point);
- ``bytes``/``fixed`` without a logical type: a base64 string;
- a union is written as its plain value (``null`` or the value), not Avro's ``{"type": value}`` form; the
  first branch that takes it wins.

Everything else passes through as parsed JSON; the encoder then checks types and ranges. A value that
cannot be converted raises :class:`DatumError` naming its field path. :func:`compile_converter` walks a
schema once and returns a function that visits only the fields that need converting (a payload of plain
strings and numbers is returned as it is).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class DatumError(ValueError):
    """A JSON value that does not fit its schema; the message names the field."""


Converter = Callable[[Any, str], Any]
"""Converts one value found at a field path (the path is for error messages)."""


def from_json(schema: Any, value: Any) -> Any:
    """``value`` (parsed JSON) converted for the Avro encoder, as ``schema`` (a schema's JSON) says."""
    return compile_converter(schema)(value)


def compile_converter(schema: Any) -> Callable[[Any], Any]:
    """A function converting payloads of ``schema``; compiled once, it visits only the fields that need it."""
    convert = _compile(schema, {}, None)
    if convert is None:
        return lambda value: value
    return lambda value: convert(value, "")


def _compile(schema: Any, names: dict[str, Any], namespace: str | None) -> Converter | None:
    """A converter for values of ``schema``, or None when they pass through unchanged."""
    if isinstance(schema, list):
        return _union([_compile(branch, names, namespace) for branch in schema if branch != "null"])
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return _base64 if schema == "bytes" else None
        named = names.get(schema) or names.get(f"{namespace}.{schema}")
        if named is None:
            raise ValueError(f"unknown type {schema!r}")
        return named if callable(named) else None
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):
        return _compile(kind, names, namespace)
    if "logicalType" in schema and schema["logicalType"] in _LOGICAL:
        converter: Converter | None = _LOGICAL[schema["logicalType"]]
    elif kind == "record":
        converter = _record(schema, names, namespace)
    elif kind == "array":
        converter = _array(_compile(schema["items"], names, namespace))
    elif kind == "map":
        converter = _map(_compile(schema["values"], names, namespace))
    else:
        converter = _base64 if kind in ("bytes", "fixed") else None
    if kind in ("enum", "fixed"):
        _register(schema, names, namespace, converter)
    return converter


def _register(
    schema: Mapping[str, Any], names: dict[str, Any], namespace: str | None, converter: Converter | None
) -> str | None:
    """Name ``schema``'s converter (True: passes through) for later references; return its namespace."""
    name = str(schema["name"])
    space = schema.get("namespace", namespace)
    full = name if "." in name or not space else f"{space}.{name}"
    names[full] = names[name.rsplit(".", 1)[-1]] = converter or True
    return full.rsplit(".", 1)[0] if "." in full else space


def _record(schema: Mapping[str, Any], names: dict[str, Any], outer: str | None) -> Converter | None:
    namespace = _register(schema, names, outer, None)
    fields = []
    for field in schema["fields"]:
        converter = _compile(field["type"], names, namespace)
        if converter is not None:
            fields.append((field["name"], converter))
    if not fields:
        return None

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise DatumError(f"{path or 'payload'}: expected an object")
        result = dict(value)
        for name, field_converter in fields:
            if name in value:
                result[name] = field_converter(value[name], f"{path}.{name}" if path else name)
        return result

    _register(schema, names, outer, convert)
    return convert


def _array(items: Converter | None) -> Converter | None:
    if items is None:
        return None

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise DatumError(f"{path}: expected an array")
        return [items(item, f"{path}[{i}]") for i, item in enumerate(value)]

    return convert


def _map(values: Converter | None) -> Converter | None:
    if values is None:
        return None

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise DatumError(f"{path}: expected an object")
        return {key: values(item, f"{path}.{key}") for key, item in value.items()}

    return convert


def _union(branches: list[Converter | None]) -> Converter | None:
    converting = [b for b in branches if b is not None]
    if not converting:
        return None
    passes = len(converting) < len(branches)

    def convert(value: Any, path: str) -> Any:
        if value is None:
            return None
        reasons = []
        for branch in converting:
            try:
                return branch(value, path)
            except DatumError as exc:
                reasons.append(str(exc))
        if passes:
            return value  # a branch that needs no conversion takes it (the encoder checks the type)
        raise DatumError(reasons[0])

    return convert


def _date(value: Any, path: str) -> date:
    if not isinstance(value, str):
        raise DatumError(f"{path}: a date is a string like 2024-03-01")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise DatumError(f"{path}: {value[:40]!r} is not a date like 2024-03-01") from exc


def _timestamp(value: Any, path: str, per_second: int = 1000) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / per_second, UTC)
        except (OverflowError, ValueError, OSError) as exc:
            raise DatumError(f"{path}: {value} is out of range for a time") from exc
    if not isinstance(value, str):
        raise DatumError(f"{path}: a time is an RFC 3339 string with an offset, or epoch milliseconds")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise DatumError(f"{path}: {value[:40]!r} is not an RFC 3339 time") from exc
    if moment.tzinfo is None:
        raise DatumError(f"{path}: {value[:40]!r} has no UTC offset")
    return moment


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DatumError(f'{path}: a decimal is a string like "1250000.00" (or an integer), never a float')
    try:
        number = Decimal(value) if isinstance(value, int) else Decimal(value.strip())
    except InvalidOperation as exc:
        raise DatumError(f"{path}: {str(value)[:40]!r} is not a decimal number") from exc
    if not number.is_finite():
        raise DatumError(f"{path}: {str(value)[:40]!r} is not a finite number")
    return number


def _base64(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise DatumError(f"{path}: bytes are a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DatumError(f"{path}: not base64") from exc


_LOGICAL: dict[str, Converter] = {
    "date": _date,
    "timestamp-millis": _timestamp,
    "timestamp-micros": lambda value, path: _timestamp(value, path, 1_000_000),
    "decimal": _decimal,
}
