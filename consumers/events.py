"""What a projection sees: a decoded event with its envelope and its place in the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DecodedEvent:
    """One Kafka record, decoded to its catalog record type."""

    type: str
    id: str
    source: str
    time: datetime
    data: dict[str, Any]
    topic: str
    partition: int
    offset: int

    @property
    def name(self) -> str:
        """The unqualified record name, e.g. ``ResidentMoved``."""
        return self.type.rsplit(".", 1)[-1]
