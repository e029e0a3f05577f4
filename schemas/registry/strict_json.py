"""JSON as the registry accepts it: RFC 8259 text that the registry can store and send back unchanged.

Python's ``json.loads`` also accepts ``NaN`` and ``Infinity``, turns ``1e999`` into an infinite float,
keeps a lone surrogate escape (``"\\ud800"``) as a string no UTF-8 encoder can write, and recurses once
per nesting level. Each of those, taken into the registry, failed later (a 500 while storing or
answering). :func:`loads` refuses them up front with a reason, and also refuses integers of more than
:data:`MAX_DIGITS` digits and nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 100
"""JSON nesting levels: an Avro schema nests about four per level of records, so 25 levels of records."""
MAX_DIGITS = 100
"""Digits of an integer: enough for any size, version, id, precision or default this registry meets."""


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class RefusedJSONError(ValueError):
    """Text that is not JSON, or JSON the registry does not take; the message says why."""


def loads(raw: str | bytes) -> Any:
    """Parse ``raw`` (bytes must be UTF-8); raise RefusedJSONError with the reason."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RefusedJSONError(f"not UTF-8: {exc}") from exc
    try:
        value = json.loads(raw, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError as exc:
        raise RefusedJSONError(f"nested more than {MAX_DEPTH} levels deep") from exc
    except RefusedJSONError:
        raise
    except ValueError as exc:
        raise RefusedJSONError(str(exc)) from exc
    # Nesting deeper than MAX_DEPTH needs more brackets than that; a lone surrogate can only come from
    # a \\uD800-\\uDFFF escape (UTF-8 text cannot hold one). Without either there is nothing to walk.
    if raw.count("[") + raw.count("{") > MAX_DEPTH and deeper_than(value, MAX_DEPTH):
        raise RefusedJSONError(f"nested more than {MAX_DEPTH} levels deep")
    if _SURROGATE_ESCAPE.search(raw) is not None:
        _check(value)
    return value


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` levels deep (walked level by level)."""
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            items = node.values() if isinstance(node, dict) else node
            below.extend(item for item in items if isinstance(item, (dict, list)))
        level = below
    return False


def _constant(name: str) -> Any:
    raise RefusedJSONError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RefusedJSONError(f"the number {text[:40]} is out of range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise RefusedJSONError(f"an integer of {len(text)} digits is out of range")
    return int(text)


def _check(value: Any) -> None:
    """Refuse strings no UTF-8 encoder can write (lone surrogates), at any depth."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            _encodable(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                _encodable(key)
                stack.append(item)
        elif isinstance(node, list):
            stack.extend(node)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RefusedJSONError(f"a string holds a lone surrogate ({text[exc.start : exc.end]!a})") from exc
