"""What a projection sees: a decoded event with its envelope and its place in the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class DecodedEvent:
    """One Kafka record, decoded to its catalog record type; a value nobody changes once decoded.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, a third of the cost
    of decoding a record; slots keep attribute access as fast as a tuple's.
    """

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
