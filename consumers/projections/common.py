"""What the agencies' read models share: routing by record name, stored dates, addresses, lookups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bus.errors import ProjectionError
from consumers.events import DecodedEvent
from consumers.readmodel import Key, Row, Table, WorkingSet

Data = dict[str, Any]
"""A decoded event payload (``DecodedEvent.data``)."""

Handler = Callable[[WorkingSet, Data], None]
"""Changes the rows as one record type says; raises ProjectionError to refuse the event."""

ADDRESS_COLUMNS = {
    "sido": "text",
    "sigungu": "text",
    "road_address": "text",
    "detail": "text",
    "postal_code": "text",
    "admin_code": "text",
}
"""The columns of the catalog's ``Address`` record, as every table holding one spells them."""


def address_row(address: Data) -> Data:
    """The address columns of a decoded ``Address`` record."""
    return {column: address.get(column) for column in ADDRESS_COLUMNS}


def iso(value: Any) -> str:
    """A date as the read models store it (ISO text), to compare an event's date with a row's."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def dispatch(handlers: dict[str, Handler], rows: WorkingSet, event: DecodedEvent) -> None:
    """Run the handler of the event's record name; a record type without one is ignored.

    Ignoring unknown types keeps a model running when a new record type is added to its topic.
    """
    handler = handlers.get(event.name)
    if handler is not None:
        handler(rows, event.data)


def hints(table: Table, *values: Any) -> list[tuple[str, Key]]:
    """Prefetch hints for a table with a one-column key: one per value present in the payload."""
    return [(table.name, (value,)) for value in values if value is not None]


def known(rows: WorkingSet, table: Table, record: str, key: Any) -> Row:
    """The row of ``table`` with primary key ``key``; refuses the ``record`` event if there is none."""
    row = rows.get(table.name, key)
    if row is None:
        raise ProjectionError(f"{record} for unknown {table.name} key {key!r}")
    return row
