"""The ``residents`` read model: each resident's current address and status, from localgov.resident."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from bus.errors import ProjectionError
from consumers.events import DecodedEvent
from consumers.store import Transaction

TOPICS = ("localgov.resident",)

DDL = """
CREATE TABLE IF NOT EXISTS residents (
    resident_id TEXT PRIMARY KEY,
    registration_number TEXT NOT NULL,
    name TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    sex TEXT NOT NULL,
    status TEXT NOT NULL,
    sido TEXT NOT NULL,
    sigungu TEXT NOT NULL,
    road_address TEXT NOT NULL,
    detail TEXT,
    postal_code TEXT NOT NULL,
    admin_code TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    moved_on TEXT,
    died_on TEXT,
    last_event_id TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
"""
_COLUMNS = (
    "resident_id", "registration_number", "name", "birth_date", "sex", "status", "sido", "sigungu",
    "road_address", "detail", "postal_code", "admin_code", "registered_on", "moved_on", "died_on",
    "last_event_id", "updated_at",
)  # fmt: skip


@dataclass(frozen=True)
class Resident:
    """A row of the residents read model."""

    resident_id: str
    registration_number: str
    name: str
    birth_date: str
    sex: str
    status: str
    sido: str
    sigungu: str
    road_address: str
    detail: str | None
    postal_code: str
    admin_code: str
    registered_on: str
    moved_on: str | None
    died_on: str | None
    last_event_id: str
    updated_at: str


def apply(current: Resident | None, event: DecodedEvent) -> Resident | None:
    """The resident after ``event``; pure. Raises ProjectionError when the event cannot apply."""
    data = event.data
    stamp = {"last_event_id": event.id, "updated_at": event.time.isoformat()}
    if event.name == "ResidentRegistered":
        return Resident(
            resident_id=data["resident_id"],
            registration_number=data["registration_number"],
            name=data["name"],
            birth_date=_iso(data["birth_date"]),
            sex=data["sex"],
            status="ACTIVE",
            **_address(data["address"]),
            registered_on=_iso(data["registered_on"]),
            moved_on=None,
            died_on=None,
            **stamp,
        )
    if current is None:
        raise ProjectionError(f"{event.name} for unknown resident {data.get('resident_id')!r}")
    if event.name == "ResidentMoved":
        return replace(current, **_address(data["new_address"]), moved_on=_iso(data["moved_on"]), **stamp)
    if event.name == "ResidentDeceased":
        return replace(current, status="DECEASED", died_on=_iso(data["died_on"]), **stamp)
    return current


class ResidentProjection:
    """Stores :func:`apply`'s results in the ``residents`` table."""

    def __init__(self, name: str = "residents") -> None:
        self.name = name
        self.topics: tuple[str, ...] = TOPICS

    def migrate(self, tx: Transaction) -> None:
        """Create the table if needed."""
        tx.execute(DDL)

    def handle(self, tx: Transaction, event: DecodedEvent) -> None:
        """Load, apply, save."""
        resident_id = event.data.get("resident_id")
        current = get_resident(tx, str(resident_id))
        updated = apply(current, event)
        if updated is not None and updated != current:
            values = asdict(updated)
            placeholders = ", ".join("?" for _ in _COLUMNS)
            assignments = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
            tx.execute(
                f"INSERT INTO residents ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "  # noqa: S608 - fixed column names
                f"ON CONFLICT (resident_id) DO UPDATE SET {assignments}",
                [values[c] for c in _COLUMNS],
            )


def get_resident(tx: Transaction, resident_id: str) -> Resident | None:
    """The stored resident, or None."""
    row = tx.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM residents WHERE resident_id = ?",  # noqa: S608 - fixed column names
        (resident_id,),
    ).fetchone()
    return None if row is None else Resident(*row)


def _address(address: dict[str, Any]) -> dict[str, Any]:
    return {k: address[k] for k in ("sido", "sigungu", "road_address", "detail", "postal_code", "admin_code")}


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
