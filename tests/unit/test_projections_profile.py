"""The citizen profile: one resident joined across every agency's read models, read through a RowSource."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from consumers.projections import READ_MODELS
from consumers.projections.localgov import ResidentsModel
from consumers.projections.profile import citizen_profile
from consumers.readmodel import Key, MemoryRows, Row, Table
from tests.unit.test_projections_common import Replay, copy_of, named, replay, replayed


class ReadOnlyRows:
    """A RowSource offering only load and select (no dict access), counting the reads it answers."""

    def __init__(self, rows: MemoryRows) -> None:
        self._rows = rows
        self.reads = 0

    def load(self, table: Table, keys: Sequence[Key]) -> list[Row]:
        """The rows with these keys."""
        self.reads += 1
        return self._rows.load(table, keys)

    def select(self, table: Table, column: str, value: Any) -> list[Row]:
        """The rows whose ``column`` equals ``value``."""
        self.reads += 1
        return self._rows.select(table, column, value)


@cache
def _store() -> MemoryRows:
    """One store holding every read model's tables after the whole simulated world."""
    store = MemoryRows()
    for name in READ_MODELS:
        store.tables.update(replayed(name).rows.tables)
    return store


def _owners() -> dict[str, str]:
    """Each vehicle's current owner, from the events alone."""
    owners: dict[str, str] = {}
    for event in (*named("VehicleRegistered"), *named("VehicleOwnershipTransferred")):
        owners[event.data["vehicle_id"]] = (
            event.data.get("new_owner_resident_id") or event.data["owner_resident_id"]
        )
    return owners


def _chosen() -> str:
    """A living resident who owns a vehicle, is in public service and holds an active benefit."""
    owners = set(_owners().values())
    servants = {e.data["resident_id"] for e in named("CivilServantAppointed")}
    suspended = {e.data["benefit_id"] for e in named("BenefitSuspended")}
    active = {
        e.data["recipient_resident_id"]
        for e in named("BenefitGranted")
        if e.data["benefit_id"] not in suspended
    }
    dead = {e.data["resident_id"] for e in named("ResidentDeceased")}
    return sorted((owners & servants & active) - dead)[0]


def test_the_profile_joins_vehicles_public_service_and_benefits_of_one_resident() -> None:
    """A resident's profile lists the vehicles they own, their civil-service record and active benefits."""
    resident_id = _chosen()
    profile = citizen_profile(ReadOnlyRows(_store()), resident_id)
    assert profile is not None
    owned = sorted(vid for vid, owner in _owners().items() if owner == resident_id)
    assert [v["vehicle_id"] for v in profile["vehicles"]] == owned
    servant_ids = sorted(
        e.data["civil_servant_id"]
        for e in named("CivilServantAppointed")
        if e.data["resident_id"] == resident_id
    )
    assert [s["civil_servant_id"] for s in profile["public_service"]] == servant_ids
    suspended = {e.data["benefit_id"] for e in named("BenefitSuspended")}
    grants = [e.data for e in named("BenefitGranted") if e.data["recipient_resident_id"] == resident_id]
    assert [b["benefit_id"] for b in profile["benefits"]["active"]] == sorted(
        g["benefit_id"] for g in grants if g["benefit_id"] not in suspended
    )
    paid = sum(
        (e.data["amount"] for e in named("BenefitPaid") if e.data["recipient_resident_id"] == resident_id),
        Decimal(0),
    )
    assert profile["benefits"]["total_paid"] == paid
    assert profile["benefits"]["grants"] == len(grants)


def test_a_suspended_benefit_is_not_among_the_active_ones() -> None:
    """A benefit suspended for a living resident leaves the active list and raises the suspended flag."""
    suspension = next(e.data for e in named("BenefitSuspended") if e.data["reason"] != "RECIPIENT_DECEASED")
    profile = citizen_profile(_store(), suspension["recipient_resident_id"])
    assert profile is not None
    assert suspension["benefit_id"] not in {b["benefit_id"] for b in profile["benefits"]["active"]}
    assert profile["benefits"]["suspended"] is True


def test_the_profile_gives_the_address_of_the_last_move() -> None:
    """The profile's address and status are the residents model's: the last reported address."""
    resident_id = _chosen()
    address: dict[str, Any] = {}
    for event in (*named("ResidentRegistered"), *named("ResidentMoved")):
        if event.data["resident_id"] == resident_id:
            address = event.data.get("new_address") or event.data["address"]
    profile = citizen_profile(_store(), resident_id)
    assert profile is not None
    assert profile["address"] == address
    assert profile["status"] == "ACTIVE"
    assert "registration_number" not in profile


def test_the_profile_names_household_relatives_from_the_residents_model() -> None:
    """A newborn's profile lists the PARENT relations of their register with each parent's name."""
    child = sorted(
        e.data["resident_id"] for e in named("FamilyRelationRegistered") if e.data["relation"] == "PARENT"
    )[0]
    profile = citizen_profile(_store(), child)
    assert profile is not None
    names = {e.data["resident_id"]: e.data["name"] for e in named("ResidentRegistered")}
    parents = sorted(
        e.data["relative_resident_id"]
        for e in named("FamilyRelationRegistered")
        if e.data["resident_id"] == child and e.data["relation"] == "PARENT"
    )
    household = [(r["relation"], r["relative_resident_id"], r["relative_name"]) for r in profile["household"]]
    assert sorted(household) == [("PARENT", parent, names[parent]) for parent in parents]


def test_the_profile_names_the_school_of_each_enrolment() -> None:
    """A student's profile gives their enrolment with the school's name and level from the schools model."""
    student = named("StudentTransferred")[0].data
    profile = citizen_profile(_store(), student["resident_id"])
    assert profile is not None
    [enrolment] = profile["enrolment"]
    schools = {e.data["school_id"]: e.data for e in named("SchoolRegistered")}
    assert enrolment["student_id"] == student["student_id"]
    assert enrolment["transfer_count"] >= 1
    school = schools[enrolment["school_id"]]
    assert (enrolment["school_name"], enrolment["school_level"]) == (school["name"], school["level"])


def test_the_profile_reads_only_through_load_and_select_in_a_few_reads() -> None:
    """The profile is built from RowSource.load/select alone, a fixed handful of reads for one resident."""
    source = ReadOnlyRows(_store())
    assert citizen_profile(source, _chosen()) == citizen_profile(_store(), _chosen())
    assert source.reads <= 9


def test_the_profile_lists_the_provenance_of_every_row_it_joins() -> None:
    """sources names each joined row's table, key, agency and event: how current each part is."""
    resident_id = _chosen()
    profile = citizen_profile(_store(), resident_id)
    assert profile is not None
    sources = {(s["table"], tuple(s["key"])): s for s in profile["sources"]}
    assert sources[("residents", (resident_id,))]["source_agency"] == "localgov"
    for vehicle in profile["vehicles"]:
        assert sources[("vehicles", (vehicle["vehicle_id"],))]["event_topic"] == "localgov.vehicle"
    for servant in profile["public_service"]:
        assert sources[("civil_servants", (servant["civil_servant_id"],))]["source_agency"] == "personnel"
    assert Counter(s["table"] for s in profile["sources"])["benefit_recipients"] == 1


def test_the_profile_of_an_unregistered_resident_is_none() -> None:
    """No residents row, no profile."""
    assert citizen_profile(_store(), "R999999999999") is None


def test_the_profile_follows_its_models_at_once() -> None:
    """A move applied to the residents model shows in the next profile: there is no copy to catch up."""
    resident_id = _chosen()
    store = MemoryRows()
    store.tables.update({name: dict(rows) for name, rows in _store().tables.items()})
    move = next(e for e in named("ResidentMoved") if e.data["resident_id"] != resident_id)
    new_address = {**move.data["new_address"], "road_address": "세종대로 209"}
    moved = copy_of(move, resident_id=resident_id, new_address=new_address)
    result = replay(ResidentsModel(), [moved], into=Replay(rows=store))
    assert result.refused == []
    profile = citizen_profile(store, resident_id)
    assert profile is not None
    assert profile["address"]["road_address"] == "세종대로 209"
    assert profile["moved_on"] == move.data["moved_on"].isoformat()
