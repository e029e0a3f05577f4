"""Loading the conformance vectors in ``tests/data/conformance`` (provenance in its README), as data."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

CONFORMANCE = Path(__file__).resolve().parent / "data" / "conformance"


def cases(name: str) -> list[dict[str, Any]]:
    """The ``cases`` of one conformance file."""
    document = json.loads((CONFORMANCE / name).read_text(encoding="utf-8"))
    return list(document["cases"])


def case_ids(name: str) -> list[str]:
    """The ids of one file's cases, for ``pytest.mark.parametrize(ids=...)``."""
    return [str(case["id"]) for case in cases(name)]


def typed_value(value: Any) -> Any:
    """A vector value with its tagged literals (``$bytes_hex``, ``$timestamp``, ``$decimal``) made real."""
    if isinstance(value, dict):
        if set(value) == {"$bytes_hex"}:
            return bytes.fromhex(value["$bytes_hex"])
        if set(value) == {"$timestamp"}:
            return datetime.fromisoformat(value["$timestamp"])
        if set(value) == {"$decimal"}:
            return Decimal(value["$decimal"])
        return {k: typed_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed_value(v) for v in value]
    return value
