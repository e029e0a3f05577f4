"""Schema references: a schema may use named types that other subjects' versions define.

The registry validates such a schema with those definitions known to the parser, and compares it
with others after :func:`inline_references` has copied each referenced definition into it at its
first use, so the compatibility checker sees one self-contained schema.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from schemas.registry.avro_schema import NAMED, PRIMITIVES, named_types


def inline_references(schema: Any, referenced: Sequence[Any]) -> Any:
    """``schema`` with the first use of each referenced named type replaced by its definition."""
    if not referenced:
        return schema
    available: dict[str, Any] = {}
    for dependency in referenced:
        available.update(named_types(dependency))
    short = {name.rsplit(".", 1)[-1]: name for name in available}
    defined: set[str] = set(named_types(schema))
    result = copy.deepcopy(schema)

    def resolve(node: Any) -> Any:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            full = node if node in available else short.get(node, "")
            if full in available and full not in defined:
                defined.add(full)
                return resolve(copy.deepcopy(available[full]))
            return node
        if isinstance(node, list):
            return [resolve(branch) for branch in node]
        if isinstance(node, dict):
            updated = dict(node)
            if isinstance(updated.get("fields"), list):
                updated["fields"] = [
                    {**fld, "type": resolve(fld.get("type"))} if isinstance(fld, dict) else fld
                    for fld in updated["fields"]
                ]
            for child in ("items", "values"):
                if child in updated:
                    updated[child] = resolve(updated[child])
            if isinstance(updated.get("type"), list | dict | str) and updated.get("type") not in (
                *NAMED,
                "array",
                "map",
                *PRIMITIVES,
            ):
                updated["type"] = resolve(updated["type"])
            return updated
        return node

    return resolve(result)
