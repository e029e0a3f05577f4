"""Schema references: a schema may use named types that other subjects' versions define.

The registry validates such a schema with those definitions known to the parser, and compares it
with others after :func:`inline_references` has copied each referenced definition into it at its
first use, so the compatibility checker sees one self-contained schema.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.avro_types import PRIMITIVES, named_types, short_name, walk


def inline_references(schema: Any, referenced: Sequence[Any]) -> Any:
    """``schema`` with the first use of each referenced named type replaced by its definition.

    A name is matched by its full name, else by its unqualified one. Uses are taken in walk order,
    and an inlined definition is walked where it now stands, so the types it uses are inlined there.
    """
    if not referenced:
        return schema
    available: dict[str, Any] = {}
    for dependency in referenced:
        available.update(named_types(dependency))
    short = {short_name(name): name for name in available}
    defined: set[str] = set(named_types(schema))
    result = copy.deepcopy(schema)
    while (use := _first_use(result, available, short, defined)) is not None:
        location, full = use
        # The definition brings the named types nested in it too: a later use of one is a reference
        # to what now stands in the schema, not a type still to inline.
        defined.update(named_types(available[full]), (full,))
        result = _replaced(result, location, copy.deepcopy(available[full]))
    return result


def _first_use(
    schema: Any, available: Mapping[str, Any], short: Mapping[str, str], defined: set[str]
) -> tuple[tuple[str | int, ...], str] | None:
    """Where the first name of a referenced type not yet defined stands, and that type's full name."""
    for node in walk(schema):
        name = node.schema
        if not isinstance(name, str) or name in PRIMITIVES:
            continue
        full = name if name in available else short.get(name, "")
        if full in available and full not in defined:
            return node.location, full
    return None


def _replaced(document: Any, location: tuple[str | int, ...], value: Any) -> Any:
    """``document`` with ``value`` at ``location`` (changed in place unless the location is the root)."""
    if not location:
        return value
    parent = document
    for key in location[:-1]:
        parent = parent[key]
    parent[location[-1]] = value
    return document
