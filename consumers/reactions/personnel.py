"""``personnel-reactions``: a reported death retires the deceased if they were serving as a civil servant.

Personnel reads the resident register's deaths and its own ``personnel.civil-servant`` topic, whose
events carry the official's ``resident_id``. For a civil servant still serving on the death report it
publishes a ``CivilServantRetired`` with reason ``DEATH_IN_SERVICE``, retired on the day of death, at
the grade and organization the record holds by then, citing the death as the CloudEvents
``causationid``. An appointment that arrives after the appointee's death is retired at once, with the
event id it would have had in the other order; a civil servant the reaction has read a retirement of
(personnel's own, for any reason, or this reaction's, whose output it reads back) is not retired again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from consumers.reactions.core import (
    DECEASED,
    RESIDENT_TOPIC,
    Death,
    Emission,
    Fact,
    ReactionRules,
    death_of,
    reaction_id,
)

APPOINTED = "govbus.personnel.CivilServantAppointed"
PROMOTED = "govbus.personnel.CivilServantPromoted"
TRANSFERRED = "govbus.personnel.CivilServantTransferred"
RETIRED = "govbus.personnel.CivilServantRetired"
CIVIL_SERVANT_TOPIC = "personnel.civil-servant"


@dataclass(slots=True)
class CivilServant:
    """What personnel must know of a civil servant to retire them: who, where, which grade, since when."""

    civil_servant_id: str
    resident_id: str
    organization: str
    grade: int
    appointed_on: date
    serving: bool = True


@dataclass
class PersonnelState:
    """Civil servants by id and by resident, and the deaths reported so far."""

    servants: dict[str, CivilServant] = field(default_factory=dict)
    by_resident: dict[str, list[str]] = field(default_factory=dict)
    deaths: dict[str, Death] = field(default_factory=dict)

    def serving(self, resident_id: str) -> list[CivilServant]:
        """The civil servant records of ``resident_id`` still serving."""
        servants = (self.servants[s] for s in self.by_resident.get(resident_id, ()))
        return [s for s in servants if s.serving]


def evolve(state: PersonnelState, event: Fact) -> None:
    """Fold one death or career event into the state; a repeated appointment or death changes nothing."""
    data = event.data
    if event.type == DECEASED:
        state.deaths.setdefault(data["resident_id"], death_of(event))
        return
    servant = state.servants.get(data.get("civil_servant_id", ""))
    if event.type == APPOINTED:
        if servant is None:
            appointed = _appointed(event)
            state.servants[appointed.civil_servant_id] = appointed
            state.by_resident.setdefault(appointed.resident_id, []).append(appointed.civil_servant_id)
    elif servant is None:
        return
    elif event.type == PROMOTED:
        servant.grade, servant.organization = data["new_grade"], data["organization_code"]
    elif event.type == TRANSFERRED:
        servant.grade, servant.organization = data["grade"], data["to_organization_code"]
    elif event.type == RETIRED:
        servant.serving = False


def decide(state: PersonnelState, event: Fact) -> list[Emission]:
    """The retirements one event calls for, given the state before it."""
    data = event.data
    if event.type == DECEASED:
        # A second report of a known death (a copy) decides nothing: the first one did.
        if data["resident_id"] in state.deaths:
            return []
        death = death_of(event)
        return [retirement(s, death) for s in state.serving(data["resident_id"])]
    if event.type == APPOINTED:
        earlier = state.deaths.get(data["resident_id"])
        if earlier is None or data["civil_servant_id"] in state.servants:
            return []
        return [retirement(_appointed(event), earlier)]
    return []


def retirement(servant: CivilServant, death: Death) -> Emission:
    """The ``CivilServantRetired`` of ``servant`` because of ``death``."""
    return Emission(
        type=RETIRED,
        data={
            "civil_servant_id": servant.civil_servant_id,
            "resident_id": servant.resident_id,
            "organization_code": servant.organization,
            "grade": servant.grade,
            "reason": "DEATH_IN_SERVICE",
            "service_years": completed_years(servant.appointed_on, death.died_on),
            "retired_on": death.died_on,
        },
        id=reaction_id(death.event_id, servant.civil_servant_id),
        causation_id=death.event_id,
    )


def completed_years(start: date, end: date) -> int:
    """Whole years from ``start`` to ``end`` (0 when ``end`` comes first)."""
    years = end.year - start.year - ((end.month, end.day) < (start.month, start.day))
    return max(years, 0)


def _appointed(event: Fact) -> CivilServant:
    data = event.data
    return CivilServant(
        civil_servant_id=data["civil_servant_id"],
        resident_id=data["resident_id"],
        organization=data["organization_code"],
        grade=data["grade"],
        appointed_on=data["appointed_on"],
    )


RULES: ReactionRules[PersonnelState] = ReactionRules(
    name="personnel-reactions",
    agency="personnel",
    topics=(RESIDENT_TOPIC, CIVIL_SERVANT_TOPIC),
    types=frozenset({DECEASED, APPOINTED, PROMOTED, TRANSFERRED, RETIRED}),
    emits=frozenset({RETIRED}),
    new_state=PersonnelState,
    evolve=evolve,
    decide=decide,
)
