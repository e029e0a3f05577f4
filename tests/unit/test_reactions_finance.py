"""finance-reactions: which benefits a reported death suspends, in whatever order the topics are read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from consumers.reactions.core import react, reaction_id
from consumers.reactions.finance import GRANTED, RULES, SUSPENDED, FinanceState

DECEASED = "govbus.localgov.ResidentDeceased"
PAID = "govbus.finance.BenefitPaid"


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


def grant(
    benefit: str,
    resident: str,
    program: str = "BASIC_PENSION",
    until: date | None = None,
    decided_on: date = date(2024, 5, 2),
) -> Event:
    """A BenefitGranted by office 1111000."""
    return Event(
        GRANTED,
        f"grant-{benefit}",
        {
            "benefit_id": benefit,
            "recipient_resident_id": resident,
            "program": program,
            "effective_until": until,
            "decided_on": decided_on,
            "granting_office": "1111000",
        },
    )


def suspension_by_finance(benefit: str, resident: str) -> Event:
    """A BenefitSuspended finance decided for a reason of its own."""
    data = {"benefit_id": benefit, "recipient_resident_id": resident, "reason": "INCOME_ABOVE_THRESHOLD"}
    return Event(SUSPENDED, f"suspension-{benefit}", data)


def run(*events: Event, state: FinanceState | None = None) -> list[Any]:
    """Every suspension the reaction emits for ``events`` in this order."""
    state = state if state is not None else RULES.new_state()
    return [emission for event in events for emission in react(RULES, state, event)]


def test_a_death_suspends_each_running_benefit_of_the_deceased_citing_the_death() -> None:
    """Each running benefit gets one RECIPIENT_DECEASED suspension from the next month, naming the death."""
    emitted = run(
        grant("W1", "R1"),
        grant("W2", "R1", program="HOUSING_BENEFIT"),
        grant("W3", "R2"),
        death("R1", event_id="d-9"),
    )
    assert [e.data["benefit_id"] for e in emitted] == ["W1", "W2"]
    pension, housing = emitted
    assert pension.type == SUSPENDED
    assert pension.causation_id == "d-9"
    assert pension.id == reaction_id("d-9", "W1")
    assert pension.data == {
        "benefit_id": "W1",
        "recipient_resident_id": "R1",
        "program": "BASIC_PENSION",
        "reason": "RECIPIENT_DECEASED",
        "suspended_from": date(2025, 4, 1),
        "legal_basis": "기초연금법 제16조",
        "cause_event_id": "d-9",
        "decided_on": date(2025, 3, 17),
        "deciding_office": "1111000",
    }
    assert housing.data["legal_basis"] == "국민기초생활 보장법 제30조"
    assert housing.id != pension.id


def test_a_death_in_december_suspends_from_january_of_the_next_year() -> None:
    """The month after a December death is January of the following year."""
    (emitted,) = run(grant("W1", "R1"), death("R1", died_on=date(2025, 12, 31)))
    assert emitted.data["suspended_from"] == date(2026, 1, 1)


def test_a_benefit_already_suspended_is_not_suspended_again() -> None:
    """A benefit finance suspended for another reason before the death is left alone."""
    assert run(grant("W1", "R1"), suspension_by_finance("W1", "R1"), death("R1")) == []


def test_a_benefit_that_ended_before_the_death_is_not_suspended() -> None:
    """A time-limited benefit that ran out before the death is not suspended; one running on that day is."""
    emitted = run(
        grant("W1", "R1", program="CHILD_ALLOWANCE", until=date(2025, 3, 13)),
        grant("W2", "R1", program="PARENTAL_BENEFIT", until=date(2025, 3, 14)),
        death("R1", died_on=date(2025, 3, 14)),
    )
    assert [e.data["benefit_id"] for e in emitted] == ["W2"]
    assert emitted[0].data["legal_basis"] == "아동수당법 제13조"


def test_a_grant_read_after_the_death_is_suspended_with_the_same_event() -> None:
    """Reading the grant after the death emits the suspension the other order emits, id included."""
    grant_first = run(grant("W1", "R1"), death("R1"))
    death_first = run(death("R1"), grant("W1", "R1"))
    assert death_first == grant_first
    assert len(death_first) == 1


def test_a_grant_decided_after_the_death_report_is_suspended_on_its_decision_day() -> None:
    """A suspension is never decided before the grant it suspends."""
    (emitted,) = run(death("R1"), grant("W1", "R1", decided_on=date(2025, 6, 2)))
    assert emitted.data["decided_on"] == date(2025, 6, 2)


def test_reading_its_own_suspension_back_and_copies_of_the_inputs_emit_nothing_more() -> None:
    """The reaction's own suspension read back, a copy of the death and a copy of the grant decide nothing."""
    state = RULES.new_state()
    (emitted,) = run(grant("W1", "R1"), death("R1"), state=state)
    echoed = Event(emitted.type, emitted.id, dict(emitted.data))
    assert run(echoed, death("R1"), grant("W1", "R1"), state=state) == []
    assert state.benefits["W1"].suspended


def test_a_copy_of_the_death_decides_nothing_even_before_the_own_suspension_is_read_back() -> None:
    """After a restart the state may lack the suspension still unread; a copy of the death emits nothing."""
    state = RULES.new_state()
    for event in (grant("W1", "R1"), death("R1")):
        RULES.evolve(state, event)
    assert run(death("R1", event_id="death-copy"), state=state) == []


def test_events_of_other_types_and_other_residents_decide_nothing() -> None:
    """Payments and the deaths of residents without benefits emit nothing."""
    paid = Event(PAID, "p-1", {"benefit_id": "W1", "recipient_resident_id": "R1"})
    assert run(grant("W1", "R1"), paid, death("R2")) == []


def test_reaction_ids_are_stable_and_distinct() -> None:
    """The id depends on the cause and the target only: the same pair always, another pair never."""
    assert reaction_id("d-1", "W1") == reaction_id("d-1", "W1")
    assert len({reaction_id("d-1", "W1"), reaction_id("d-1", "W2"), reaction_id("d-2", "W1")}) == 3
