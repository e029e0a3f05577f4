"""The pure residents projection."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from bus.errors import ProjectionError
from consumers.events import DecodedEvent
from consumers.projections.residents import apply

HOME = {
    "sido": "서울특별시",
    "sigungu": "종로구",
    "road_address": "종로 1",
    "detail": None,
    "postal_code": "03000",
    "admin_code": "1111010100",
}
NEW_HOME = {**HOME, "sigungu": "강남구", "road_address": "테헤란로 5", "postal_code": "06000"}


def _event(record: str, offset: int, **data: Any) -> DecodedEvent:
    return DecodedEvent(
        type=f"govbus.localgov.{record}",
        id=f"e{offset}",
        source="urn:test",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        data={"resident_id": "R1", **data},
        topic="localgov.resident",
        partition=0,
        offset=offset,
    )


def _registered() -> DecodedEvent:
    return _event(
        "ResidentRegistered",
        1,
        registration_number="900101-1234567",
        name="김민준",
        birth_date=date(1990, 1, 1),
        sex="MALE",
        address=HOME,
        registered_on=date(2024, 1, 2),
    )


def test_registration_creates_an_active_resident() -> None:
    """ResidentRegistered yields an active resident at the registered address."""
    resident = apply(None, _registered())
    assert resident is not None
    assert (resident.status, resident.sigungu, resident.birth_date) == ("ACTIVE", "종로구", "1990-01-01")


def test_move_changes_only_the_address() -> None:
    """ResidentMoved replaces the address and records the move date, keeping identity fields."""
    before = apply(None, _registered())
    after = apply(before, _event("ResidentMoved", 2, new_address=NEW_HOME, moved_on=date(2025, 3, 1)))
    assert after is not None
    assert before is not None
    assert (after.sigungu, after.road_address, after.moved_on) == ("강남구", "테헤란로 5", "2025-03-01")
    assert (after.name, after.registration_number) == (before.name, before.registration_number)
    assert after.last_event_id == "e2"


def test_death_marks_the_resident_deceased() -> None:
    """ResidentDeceased sets the status and the date of death."""
    resident = apply(apply(None, _registered()), _event("ResidentDeceased", 3, died_on=date(2026, 2, 1)))
    assert resident is not None
    assert (resident.status, resident.died_on) == ("DECEASED", "2026-02-01")


def test_move_of_unknown_resident_is_a_projection_error() -> None:
    """A move for a resident never registered cannot apply and says which resident."""
    with pytest.raises(ProjectionError, match="R1"):
        apply(None, _event("ResidentMoved", 2, new_address=NEW_HOME, moved_on=date(2025, 3, 1)))
