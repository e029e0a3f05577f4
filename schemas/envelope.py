"""CloudEvents 1.0 in Kafka binary mode: attributes travel as ``ce_*`` headers, the value is the data.

Extensions used by govbus: ``correlationid`` (one citizen request across agencies), ``causationid``
(the event that caused this one), ``legalbasis`` (the statute that allows the processing) and
``dataclassification`` (the highest field classification present in the event).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas import fast_encoder

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/avro"
EXTENSIONS = ("correlationid", "causationid", "legalbasis", "dataclassification")

Headers = list[tuple[str, str | bytes | None]]


def python_event_id() -> str:
    """A version-7 UUID string (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    Time-ordered ids keep a consumer's index of applied event ids growing at its end: with random
    (version 4) ids every batch of inserts touches pages all over the index, and recording a million
    ids into SQLite took 15 times longer per id than with these.
    """
    t = f"{time.time_ns() // 1_000_000:012x}"
    h = os.urandom(10).hex()
    return f"{t[:8]}-{t[8:]}-7{h[1:4]}-{'89ab'[int(h[4], 16) & 3]}{h[5:8]}-{h[8:]}"


new_event_id: Callable[[], str] = fast_encoder.fast_event_id or python_event_id
"""A version-7 UUID string: the C extension's when built (15x faster), else python_event_id."""


@dataclass(frozen=True)
class CloudEvent:
    """The CloudEvents context attributes of one event (the data travels separately)."""

    source: str
    type: str
    id: str = field(default_factory=new_event_id)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    extensions: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> Headers:
        """Render as Kafka headers in binary content mode."""
        rendered: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", format_time(self.time).encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        rendered.extend((f"ce_{name}", value.encode()) for name, value in self.extensions.items() if value)
        return rendered

    @classmethod
    def from_headers(
        cls, headers: Iterable[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None
    ) -> CloudEvent:
        """Parse the attributes back from Kafka headers; raises ValueError when a required one is missing."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers or []
        values = {
            name: raw.decode() if isinstance(raw, bytes) else raw for name, raw in pairs if raw is not None
        }
        missing = [a for a in ("ce_id", "ce_source", "ce_type", "ce_time") if a not in values]
        if missing:
            raise ValueError(f"missing CloudEvents headers: {', '.join(missing)}")
        return cls(
            source=values["ce_source"],
            type=values["ce_type"],
            id=values["ce_id"],
            time=datetime.fromisoformat(values["ce_time"].replace("Z", "+00:00")),
            extensions={name: values[f"ce_{name}"] for name in EXTENSIONS if f"ce_{name}" in values},
        )


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
