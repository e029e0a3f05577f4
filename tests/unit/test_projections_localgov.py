"""The local government read models (residents, households, vehicles) against the simulated world."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.projections.localgov import HouseholdsModel, ResidentsModel, VehiclesModel
from tests.unit.test_projections_common import (
    accepted,
    copy_of,
    events_for,
    named,
    refusal,
    replayed,
    until,
)

ADDRESS = ("sido", "sigungu", "road_address", "detail", "postal_code", "admin_code")


def _address(row: dict[str, Any]) -> dict[str, Any]:
    return {c: row[c] for c in ADDRESS}


# -- residents -------------------------------------------------------------------------------------


def test_each_resident_lives_at_the_address_of_their_last_move() -> None:
    """A resident's address is the last ResidentMoved's new address, or the registered one if never moved."""
    expected: dict[str, dict[str, Any]] = {}
    for event in events_for(ResidentsModel()):
        if event.name == "ResidentRegistered":
            expected[event.data["resident_id"]] = event.data["address"]
        elif event.name == "ResidentMoved":
            expected[event.data["resident_id"]] = event.data["new_address"]
    residents = replayed("residents").table("residents")
    assert {rid: _address(row) for rid, row in residents.items()} == {
        rid: _address(address) for rid, address in expected.items()
    }
    assert len(named("ResidentMoved")) > 1000


def test_a_resident_is_deceased_exactly_when_a_death_was_reported() -> None:
    """Status and died_on come from ResidentDeceased; everyone else is ACTIVE with no date of death."""
    deaths = {e.data["resident_id"]: e.data["died_on"].isoformat() for e in named("ResidentDeceased")}
    residents = replayed("residents").table("residents")
    assert {rid for rid, row in residents.items() if row["status"] == "DECEASED"} == set(deaths)
    assert all(residents[rid]["died_on"] == died_on for rid, died_on in deaths.items())
    assert {row["status"] for rid, row in residents.items() if rid not in deaths} == {"ACTIVE"}
    assert deaths


def test_a_resident_keeps_the_identity_they_were_registered_with() -> None:
    """Name, registration number, birth date, sex and registration date stay as registered after moves."""
    residents = replayed("residents").table("residents")
    for event in named("ResidentRegistered"):
        row, data = residents[event.data["resident_id"]], event.data
        assert (row["name"], row["registration_number"], row["sex"]) == (
            data["name"],
            data["registration_number"],
            data["sex"],
        )
        assert (row["birth_date"], row["registered_on"]) == (
            data["birth_date"].isoformat(),
            data["registered_on"].isoformat(),
        )


def test_a_move_of_an_unknown_resident_is_refused_without_trace() -> None:
    """ResidentMoved for a resident never registered is refused and changes no row."""
    move = named("ResidentMoved")[0]
    error = refusal(
        ResidentsModel(), copy_of(move, resident_id="R999999999999"), until(ResidentsModel(), move)
    )
    assert "R999999999999" in str(error)


def test_a_death_of_an_unknown_resident_is_refused_without_trace() -> None:
    """ResidentDeceased for a resident never registered is refused and changes no row."""
    death = named("ResidentDeceased")[0]
    refusal(ResidentsModel(), copy_of(death, resident_id="R999999999999"), until(ResidentsModel(), death))


def test_a_move_applied_twice_leaves_the_same_resident() -> None:
    """Re-applying the last move of a resident changes none of their declared columns."""
    model = ResidentsModel()
    move = named("ResidentMoved")[-1]
    once = accepted(model, until(model, move)).table("residents")[move.data["resident_id"]]
    twice = accepted(model, [*until(model, move), copy_of(move)]).table("residents")[move.data["resident_id"]]
    assert {**twice, "event_id": move.id, "event_offset": move.offset} == once


# -- households ------------------------------------------------------------------------------------


def test_every_registered_relation_is_one_row() -> None:
    """family_relations holds one row per FamilyRelationRegistered, with its principal, relative and kind."""
    relations = replayed("households").table("family_relations")
    events = named("FamilyRelationRegistered")
    assert len(relations) == len(events)
    for event in events:
        row = relations[event.data["relation_id"]]
        assert (row["resident_id"], row["relative_resident_id"], row["relation"], row["cause"]) == (
            event.data["resident_id"],
            event.data["relative_resident_id"],
            event.data["relation"],
            event.data["cause"],
        )


def test_a_birth_registers_the_relation_in_both_directions() -> None:
    """Every PARENT relation of a child has the parent's CHILD relation to that child beside it."""
    relations = replayed("households").table("family_relations").values()
    pairs = {(r["resident_id"], r["relative_resident_id"], r["relation"]) for r in relations}
    parents = [(child, parent) for child, parent, relation in pairs if relation == "PARENT"]
    assert parents
    assert all((parent, child, "CHILD") in pairs for child, parent in parents)


def test_a_relation_to_oneself_is_refused_without_trace() -> None:
    """A resident cannot be their own relative."""
    relation = named("FamilyRelationRegistered")[0]
    bad = copy_of(relation, relation_id="F999999999999", relative_resident_id=relation.data["resident_id"])
    assert "themself" in str(refusal(HouseholdsModel(), bad, until(HouseholdsModel(), relation)))


def test_a_relation_id_reused_for_another_relative_is_refused_without_trace() -> None:
    """Two relations may not share a relation id; restating the same relation is accepted."""
    first, second = named("FamilyRelationRegistered")[:2]
    model = HouseholdsModel()
    bad = copy_of(second, relation_id=first.data["relation_id"])
    refusal(model, bad, until(model, second))
    accepted(model, [*until(model, second), copy_of(first)])


# -- vehicles --------------------------------------------------------------------------------------


def _owners() -> dict[str, tuple[str, int, str | None]]:
    """Each vehicle's owner, number of transfers and last transfer date, from the events alone."""
    owners: dict[str, tuple[str, int, str | None]] = {}
    for event in events_for(VehiclesModel()):
        data = event.data
        if event.name == "VehicleRegistered":
            owners[data["vehicle_id"]] = (data["owner_resident_id"], 0, None)
        else:
            _, count, _ = owners[data["vehicle_id"]]
            owners[data["vehicle_id"]] = (
                data["new_owner_resident_id"],
                count + 1,
                data["transferred_on"].isoformat(),
            )
    return owners


def test_a_transferred_vehicle_belongs_to_its_last_buyer() -> None:
    """Owner, transfer count and last transfer date follow the vehicle's transfers in order."""
    vehicles = replayed("vehicles").table("vehicles")
    owners = _owners()
    assert {
        vid: (r["owner_resident_id"], r["transfer_count"], r["last_transferred_on"])
        for vid, r in vehicles.items()
    } == owners
    assert any(count >= 2 for _, count, _ in owners.values())


def test_a_vehicle_keeps_the_details_of_its_last_transfer() -> None:
    """The previous owner, cause and declared price of the last transfer are on the vehicle's row."""
    vehicles = replayed("vehicles").table("vehicles")
    last = {e.data["vehicle_id"]: e.data for e in named("VehicleOwnershipTransferred")}
    for vehicle_id, data in last.items():
        row = vehicles[vehicle_id]
        assert (
            row["previous_owner_resident_id"],
            row["last_transfer_cause"],
            row["last_transfer_price"],
        ) == (
            data["previous_owner_resident_id"],
            data["cause"],
            data["transfer_price"],
        )
        assert row["plate_number"] == data["plate_number"]
        assert _address(row) == _address(data["base_address"])


def test_a_transfer_by_someone_who_is_not_the_owner_is_refused_without_trace() -> None:
    """A transfer whose previous owner is not the current owner is refused and changes no row."""
    model = VehiclesModel()
    transfer = named("VehicleOwnershipTransferred")[0]
    bad = copy_of(transfer, previous_owner_resident_id="R999999999999")
    assert "not by the transfer's previous owner" in str(refusal(model, bad, until(model, transfer)))


def test_a_transfer_of_an_unknown_vehicle_is_refused_without_trace() -> None:
    """A transfer of a vehicle never registered is refused and changes no row."""
    model = VehiclesModel()
    transfer = named("VehicleOwnershipTransferred")[0]
    refusal(model, copy_of(transfer, vehicle_id="V999999999999"), until(model, transfer))


def test_a_copy_of_the_last_transfer_changes_nothing() -> None:
    """The last transfer applied again (the same owners and date) keeps the owner and the transfer count."""
    model = VehiclesModel()
    transfer = named("VehicleOwnershipTransferred")[0]
    once = accepted(model, until(model, transfer)).table("vehicles")
    again = accepted(model, [*until(model, transfer), copy_of(transfer)]).table("vehicles")
    assert again == once


@pytest.mark.parametrize("changed", [{}, {"vin": "KMHXX000000000000"}])
def test_a_second_registration_of_a_vehicle_is_a_copy_or_a_conflict(changed: dict[str, str]) -> None:
    """Registering a known vehicle again changes nothing when it states the same VIN, else it is refused."""
    model = VehiclesModel()
    transfer = named("VehicleOwnershipTransferred")[0]
    registration = next(
        e for e in named("VehicleRegistered") if e.data["vehicle_id"] == transfer.data["vehicle_id"]
    )
    before = until(model, transfer)
    if changed:
        assert "already registered" in str(refusal(model, copy_of(registration, **changed), before))
    else:
        assert accepted(model, [*before, copy_of(registration)]).table("vehicles") == accepted(
            model, before
        ).table("vehicles")
