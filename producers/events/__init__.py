"""Typed agency events: pydantic models generated from the ``schemas/avsc`` catalog.

Build an event as a model, publish ``event.to_avro()``; read one back with ``Model.from_avro(data)``.
The agency modules (``localgov``, ``education``, ``personnel``, ``finance``) and ``common`` are generated
by ``python -m producers.events.codegen``; the catalog files stay the one source of truth.
"""

from __future__ import annotations

from producers.events import education, finance, localgov, personnel
from producers.events.base import AvroDecimal, AvroEvent, AvroRecord, TimestampMillis

EVENT_MODELS: dict[str, type[AvroEvent]] = {
    model.avro_full_name: model
    for module in (localgov, education, personnel, finance)
    for model in module.EVENTS
}
"""Every catalog event type's model, by record full name (the CloudEvents ``ce_type``)."""

__all__ = ["EVENT_MODELS", "AvroDecimal", "AvroEvent", "AvroRecord", "TimestampMillis"]
