"""``finance-reactions``: a reported death suspends every benefit the deceased still receives.

Finance reads the resident register's deaths and its own ``finance.benefit`` topic. For each benefit
still owed on the day of death (granted, not suspended, not ended before it) it publishes a
``BenefitSuspended`` with reason ``RECIPIENT_DECEASED``, suspended from the first day of the month
after the death (a benefit is owed for the month of death), citing the death as ``cause_event_id``
and as the CloudEvents ``causationid``. Either order across the two topics gives the same result: a
grant that arrives after its recipient's death is suspended at once, citing the death, with the same
event id it would have had if the grant had come first. A benefit the reaction has read a suspension
of (finance's own, for another reason, or this reaction's, whose output it reads back) is not
suspended again; a suspension finance published before the death but that the reaction reads only
after it cannot be foreseen (see :mod:`consumers.reactions.runtime`, "Order across topics").
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

GRANTED = "govbus.finance.BenefitGranted"
SUSPENDED = "govbus.finance.BenefitSuspended"
BENEFIT_TOPIC = "finance.benefit"
# The statute that allows suspending each program's payments (the grant cites the one that allows paying).
SUSPENSION_BASIS = {
    "BASIC_PENSION": "기초연금법 제16조",
    "CHILD_ALLOWANCE": "아동수당법 제13조",
    "PARENTAL_BENEFIT": "아동수당법 제13조",
    "NATIONAL_BASIC_LIVELIHOOD": "국민기초생활 보장법 제30조",
    "HOUSING_BENEFIT": "국민기초생활 보장법 제30조",
    "DISABILITY_PENSION": "장애인연금법 제12조",
}


@dataclass(slots=True)
class Benefit:
    """What finance must know of a granted benefit to suspend it."""

    benefit_id: str
    recipient: str
    program: str
    until: date | None
    office: str
    decided_on: date
    suspended: bool = False

    def owed_at(self, death: Death) -> bool:
        """Whether the benefit still runs on the day of death: not suspended and not ended before it."""
        return not self.suspended and (self.until is None or self.until >= death.died_on)


@dataclass
class FinanceState:
    """Benefits by id and by recipient, and the deaths reported so far."""

    benefits: dict[str, Benefit] = field(default_factory=dict)
    by_recipient: dict[str, list[str]] = field(default_factory=dict)
    deaths: dict[str, Death] = field(default_factory=dict)

    def benefits_of(self, resident_id: str) -> list[Benefit]:
        """Every benefit granted to ``resident_id``, in the order of their grants."""
        return [self.benefits[b] for b in self.by_recipient.get(resident_id, ())]


def evolve(state: FinanceState, event: Fact) -> None:
    """Fold one death, grant or suspension into the state; a repeated one changes nothing."""
    data = event.data
    if event.type == DECEASED:
        state.deaths.setdefault(data["resident_id"], death_of(event))
    elif event.type == GRANTED:
        if data["benefit_id"] not in state.benefits:
            benefit = _benefit(event)
            state.benefits[benefit.benefit_id] = benefit
            state.by_recipient.setdefault(benefit.recipient, []).append(benefit.benefit_id)
    elif event.type == SUSPENDED:
        known = state.benefits.get(data["benefit_id"])
        if known is not None:
            known.suspended = True


def decide(state: FinanceState, event: Fact) -> list[Emission]:
    """The suspensions one event calls for, given the state before it."""
    data = event.data
    if event.type == DECEASED:
        # A second report of a known death (a copy) decides nothing: the first one did.
        if data["resident_id"] in state.deaths:
            return []
        death = death_of(event)
        return [suspension(b, death) for b in state.benefits_of(data["resident_id"]) if b.owed_at(death)]
    if event.type == GRANTED:
        earlier = state.deaths.get(data["recipient_resident_id"])
        if earlier is None or data["benefit_id"] in state.benefits:
            return []
        benefit = _benefit(event)
        return [suspension(benefit, earlier)] if benefit.owed_at(earlier) else []
    return []


def suspension(benefit: Benefit, death: Death) -> Emission:
    """The ``BenefitSuspended`` of ``benefit`` because of ``death``."""
    died = death.died_on
    first_unpaid = date(died.year + died.month // 12, died.month % 12 + 1, 1)
    return Emission(
        type=SUSPENDED,
        data={
            "benefit_id": benefit.benefit_id,
            "recipient_resident_id": benefit.recipient,
            "program": benefit.program,
            "reason": "RECIPIENT_DECEASED",
            "suspended_from": first_unpaid,
            "legal_basis": SUSPENSION_BASIS[benefit.program],
            "cause_event_id": death.event_id,
            # Decided when finance learns of the death; never before the grant it suspends.
            "decided_on": max(death.reported_on, benefit.decided_on),
            "deciding_office": benefit.office,
        },
        id=reaction_id(death.event_id, benefit.benefit_id),
        causation_id=death.event_id,
    )


def _benefit(event: Fact) -> Benefit:
    data = event.data
    return Benefit(
        benefit_id=data["benefit_id"],
        recipient=data["recipient_resident_id"],
        program=data["program"],
        until=data["effective_until"],
        office=data["granting_office"],
        decided_on=data["decided_on"],
    )


RULES: ReactionRules[FinanceState] = ReactionRules(
    name="finance-reactions",
    agency="finance",
    topics=(RESIDENT_TOPIC, BENEFIT_TOPIC),
    types=frozenset({DECEASED, GRANTED, SUSPENDED}),
    emits=frozenset({SUSPENDED}),
    new_state=FinanceState,
    evolve=evolve,
    decide=decide,
)
