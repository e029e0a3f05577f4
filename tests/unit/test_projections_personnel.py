"""The civil_servants read model against the simulated world."""

from __future__ import annotations

from typing import Any

from consumers.projections.personnel import CivilServantsModel
from tests.unit.test_projections_common import (
    accepted,
    copy_of,
    events_for,
    named,
    refusal,
    replayed,
    retyped,
    until,
)


def _careers() -> dict[str, dict[str, Any]]:
    """Each civil servant's post, grade and status, from the events alone."""
    careers: dict[str, dict[str, Any]] = {}
    for event in events_for(CivilServantsModel()):
        data = event.data
        career = careers.setdefault(data["civil_servant_id"], {"promotions": 0, "transfers": 0})
        if event.name == "CivilServantAppointed":
            career.update(resident=data["resident_id"], org=data["organization_code"], grade=data["grade"])
            career.update(status="SERVING")
        elif event.name == "CivilServantPromoted":
            career.update(grade=data["new_grade"], promotions=career["promotions"] + 1)
        elif event.name == "CivilServantTransferred":
            career.update(org=data["to_organization_code"], transfers=career["transfers"] + 1)
        elif event.name == "CivilServantRetired":
            career.update(status="RETIRED", org=data["organization_code"], grade=data["grade"])
    return careers


def test_each_civil_servant_holds_the_post_and_grade_of_their_last_event() -> None:
    """Organisation, grade, status and counts follow the appointment, promotions, transfers and retirement."""
    servants = replayed("civil_servants").table("civil_servants")
    assert {
        cid: {
            "resident": r["resident_id"],
            "org": r["organization_code"],
            "grade": r["grade"],
            "status": r["status"],
            "promotions": r["promotion_count"],
            "transfers": r["transfer_count"],
        }
        for cid, r in servants.items()
    } == _careers()
    assert {"SERVING", "RETIRED"} == {r["status"] for r in servants.values()}


def test_a_retired_civil_servant_keeps_the_reason_and_years_of_service() -> None:
    """A retirement records its date, reason and completed years of service."""
    servants = replayed("civil_servants").table("civil_servants")
    retirements = named("CivilServantRetired")
    assert retirements
    for event in retirements:
        row = servants[event.data["civil_servant_id"]]
        assert (row["retired_on"], row["retirement_reason"], row["service_years"]) == (
            event.data["retired_on"].isoformat(),
            event.data["reason"],
            event.data["service_years"],
        )


def test_a_promotion_from_a_grade_not_held_is_refused_without_trace() -> None:
    """A promotion whose previous grade is not the current grade is refused and changes no row."""
    model = CivilServantsModel()
    promotion = named("CivilServantPromoted")[0]
    previous = promotion.data["previous_grade"]
    bad = copy_of(promotion, previous_grade=previous - 1, new_grade=previous - 2)
    assert "holds grade" in str(refusal(model, bad, until(model, promotion)[:-1]))


def test_a_demotion_is_no_promotion_and_is_refused_without_trace() -> None:
    """A CivilServantPromoted that does not raise the grade (lower its number) is refused."""
    model = CivilServantsModel()
    promotion = named("CivilServantPromoted")[0]
    previous = promotion.data["previous_grade"]
    bad = copy_of(promotion, new_grade=previous)
    assert "no promotion" in str(refusal(model, bad, until(model, promotion)[:-1]))


def test_a_grade_outside_one_to_nine_is_refused_without_trace() -> None:
    """Grades run from 1 to 9."""
    model = CivilServantsModel()
    appointment = named("CivilServantAppointed")[0]
    refusal(
        model, copy_of(appointment, civil_servant_id="C999999999999", grade=10), until(model, appointment)
    )


def test_a_copy_of_the_last_promotion_changes_nothing() -> None:
    """The last promotion applied again keeps the grade and the promotion count."""
    model = CivilServantsModel()
    promotion = named("CivilServantPromoted")[0]
    once = accepted(model, until(model, promotion)).table("civil_servants")
    assert accepted(model, [*until(model, promotion), copy_of(promotion)]).table("civil_servants") == once


def test_a_transfer_from_an_organisation_not_served_is_refused_without_trace() -> None:
    """A transfer whose organisation left is not the current one is refused and changes no row."""
    model = CivilServantsModel()
    transfer = named("CivilServantTransferred")[0]
    bad = copy_of(transfer, from_organization_code="0000000")
    assert "cannot transfer from" in str(refusal(model, bad, until(model, transfer)[:-1]))


def test_nothing_follows_a_retirement() -> None:
    """After CivilServantRetired, a promotion is refused and a repeated retirement changes nothing."""
    model = CivilServantsModel()
    retirement = named("CivilServantRetired")[0]
    data = retirement.data
    promotion = retyped(
        retirement,
        "CivilServantPromoted",
        civil_servant_id=data["civil_servant_id"],
        resident_id=data["resident_id"],
        organization_code=data["organization_code"],
        previous_grade=data["grade"],
        new_grade=data["grade"] - 1,
        job_series="행정",
        promotion_type="REVIEW",
        promoted_on=data["retired_on"],
    )
    before = until(model, retirement)
    assert "retired on" in str(refusal(model, promotion, before))
    assert accepted(model, [*before, copy_of(retirement)]).table("civil_servants") == accepted(
        model, before
    ).table("civil_servants")


def test_an_appointment_of_a_known_civil_servant_is_a_copy_or_a_conflict() -> None:
    """Appointing a known civil servant again changes nothing for the same date, else it is refused."""
    model = CivilServantsModel()
    promotion = named("CivilServantPromoted")[0]
    appointment = next(
        e
        for e in named("CivilServantAppointed")
        if e.data["civil_servant_id"] == promotion.data["civil_servant_id"]
    )
    before = until(model, promotion)
    same = accepted(model, [*before, copy_of(appointment)]).table("civil_servants")
    assert same == accepted(model, before).table("civil_servants")
    later = copy_of(appointment, appointed_on=promotion.data["promoted_on"])
    assert "appointed already" in str(refusal(model, later, before))
