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
    # A lone surrogate can only come from a \\uD800-\\uDFFF escape (UTF-8 text cannot hold one), and
    # nesting deeper than MAX_DEPTH needs more brackets than that: without either, there is nothing to walk.
    strings = _SURROGATE_ESCAPE.search(raw) is not None
    if strings or raw.count("[") + raw.count("{") > MAX_DEPTH:
        _check(value, strings)
    return value


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


def _check(value: Any, strings: bool) -> None:
    """Refuse nesting deeper than MAX_DEPTH and (when ``strings``) strings no UTF-8 encoder can write."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if strings:
                _encodable(node)
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise RefusedJSONError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                if strings:
                    _encodable(key)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RefusedJSONError(f"a string holds a lone surrogate ({text[exc.start : exc.end]!a})") from exc
