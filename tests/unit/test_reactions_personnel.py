"""personnel-reactions: which official a reported death retires, in whatever order the topics are read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from consumers.reactions.core import react, reaction_id
from consumers.reactions.personnel import (
    APPOINTED,
    PROMOTED,
    RETIRED,
    RULES,
    TRANSFERRED,
    PersonnelState,
    completed_years,
)

DECEASED = "govbus.localgov.ResidentDeceased"


@dataclass(frozen=True)
class Event:
    """A consumed event as the reaction reads it."""

    type: str
    id: str
    data: dict[str, Any] = field(default_factory=dict)


def death(resident: str, event_id: str = "death-1", died_on: date = date(2025, 3, 14)) -> Event:
    """A ResidentDeceased reported three days after the death."""
    reported = date.fromordinal(died_on.toordinal() + 3)
    return Event(DECEASED, event_id, {"resident_id": resident, "died_on": died_on, "reported_on": reported})


def appointed(servant: str, resident: str, on: date = date(2010, 3, 15)) -> Event:
    """A grade-9 appointment at office 1111000."""
    data = {
        "civil_servant_id": servant,
        "resident_id": resident,
        "organization_code": "1111000",
        "grade": 9,
        "appointed_on": on,
    }
    return Event(APPOINTED, f"appointed-{servant}", data)


def promoted(servant: str, resident: str, grade: int, organization: str) -> Event:
    """A promotion to ``grade`` at ``organization``."""
    data = {
        "civil_servant_id": servant,
        "resident_id": resident,
        "organization_code": organization,
        "new_grade": grade,
    }
    return Event(PROMOTED, f"promoted-{servant}-{grade}", data)


def transferred(servant: str, resident: str, grade: int, to: str) -> Event:
    """A transfer to organization ``to``."""
    data = {"civil_servant_id": servant, "resident_id": resident, "to_organization_code": to, "grade": grade}
    return Event(TRANSFERRED, f"transferred-{servant}-{to}", data)


def retired(servant: str, resident: str) -> Event:
    """A retirement personnel decided for a reason of its own."""
    data = {"civil_servant_id": servant, "resident_id": resident, "reason": "VOLUNTARY_RESIGNATION"}
    return Event(RETIRED, f"retired-{servant}", data)


def run(*events: Event, state: PersonnelState | None = None) -> list[Any]:
    """Every retirement the reaction emits for ``events`` in this order."""
    state = state if state is not None else RULES.new_state()
    return [emission for event in events for emission in react(RULES, state, event)]


def test_a_death_retires_a_serving_civil_servant_at_their_current_grade_and_post() -> None:
    """The official retires DEATH_IN_SERVICE on the day of death, at the last grade and post, citing it."""
    (emitted,) = run(
        appointed("C1", "R1", on=date(2010, 3, 15)),
        promoted("C1", "R1", 8, "1111000"),
        transferred("C1", "R1", 8, "1741000"),
        appointed("C2", "R2"),
        death("R1", event_id="d-7"),
    )
    assert emitted.type == RETIRED
    assert emitted.id == reaction_id("d-7", "C1")
    assert emitted.causation_id == "d-7"
    assert emitted.data == {
        "civil_servant_id": "C1",
        "resident_id": "R1",
        "organization_code": "1741000",
        "grade": 8,
        "reason": "DEATH_IN_SERVICE",
        "service_years": 14,
        "retired_on": date(2025, 3, 14),
    }


def test_a_civil_servant_who_already_left_the_service_is_not_retired_again() -> None:
    """An official retired for another reason before the death is left alone."""
    assert run(appointed("C1", "R1"), retired("C1", "R1"), death("R1")) == []


def test_an_appointment_read_after_the_death_is_retired_with_the_same_event() -> None:
    """Reading the appointment after the death emits the retirement the other order emits, id included."""
    appointment_first = run(appointed("C1", "R1"), death("R1"))
    death_first = run(death("R1"), appointed("C1", "R1"))
    assert death_first == appointment_first
    assert len(death_first) == 1


def test_reading_its_own_retirement_back_and_copies_of_the_inputs_emit_nothing_more() -> None:
    """The reaction's own retirement read back, a copy of the death and of the appointment decide nothing."""
    state = RULES.new_state()
    (emitted,) = run(appointed("C1", "R1"), death("R1"), state=state)
    echoed = Event(emitted.type, emitted.id, dict(emitted.data))
    assert run(echoed, death("R1", event_id="death-copy"), appointed("C1", "R1"), state=state) == []
    assert not state.servants["C1"].serving


def test_the_death_of_a_resident_who_is_no_civil_servant_decides_nothing() -> None:
    """Only a serving official's death calls for a retirement."""
    assert run(appointed("C1", "R1"), death("R2")) == []


def test_service_years_count_whole_years_and_never_go_negative() -> None:
    """A year counts once its anniversary is reached; an end before the start gives zero."""
    assert completed_years(date(2010, 3, 15), date(2025, 3, 14)) == 14
    assert completed_years(date(2010, 3, 15), date(2025, 3, 15)) == 15
    assert completed_years(date(2025, 3, 15), date(2025, 1, 1)) == 0
