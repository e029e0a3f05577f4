"""Local government read models: ``residents``, ``households`` and ``vehicles``.

Three adapters, one per register, each a pure projection of its own topic:

``residents`` (localgov.resident → table ``residents``), the rules of the first residents projection:
    * ResidentRegistered writes the resident as ACTIVE at the registered address. A registration of a
      known resident replaces the row (a restated registration wins), so re-applying one is harmless.
    * ResidentMoved sets the address and ``moved_on``; ResidentDeceased sets DECEASED and ``died_on``.
      Both are refused (ProjectionError → DLQ) for a resident never registered: the topic is keyed by
      resident id, so the registration always comes first. Re-applying either leaves the same resident
      (only the provenance names the later event).

``households`` (localgov.family → table ``family_relations``, one row per registered relation):
    * FamilyRelationRegistered writes the relation under its ``relation_id``; restating a relation
      with the same principal and relative replaces it (idempotent).
    * Refused: a relation of a resident to themself, and a known ``relation_id`` naming another
      principal or relative (two relations may not share an id).
    * The principal and relative are not checked against ``residents``: another topic, another adapter,
      with no ordering between them.

``vehicles`` (localgov.vehicle → table ``vehicles``): the current owner and a summary of transfers.
    * VehicleRegistered creates the vehicle with no transfers. A registration of a known vehicle is a
      copy when it states the same VIN and registration date (ignored); otherwise it is refused, as
      replacing the row would erase the vehicle's owners since.
    * VehicleOwnershipTransferred moves the vehicle to the new owner (plate and place of use too),
      counts the transfer and keeps the last one's date, cause, price and previous owner. Refused: an
      unknown vehicle, a transfer to the owner themself, and a previous owner who is not the current
      one, unless the event repeats the last transfer applied (same previous and new owner and date),
      which is a copy and changes nothing.

Every model ignores event types it does not know on its topics, so a record type added to a topic
later does not stop it. Applying each event once is the runtime's job, not the models'; the rules
above only make an event that slips through twice harmless where the model can tell.
"""

from __future__ import annotations

from collections.abc import Iterable

from bus.errors import ProjectionError
from consumers.events import DecodedEvent
from consumers.projections.common import (
    ADDRESS_COLUMNS,
    Data,
    Handler,
    address_row,
    dispatch,
    hints,
    iso,
    known,
)
from consumers.readmodel import Derived, Key, Table, WorkingSet

RESIDENTS = Table(
    "residents",
    {
        "resident_id": "text",
        "registration_number": "text",
        "name": "text",
        "birth_date": "text",
        "sex": "text",
        "nationality": "text",
        "status": "text",
        **ADDRESS_COLUMNS,
        "registered_on": "text",
        "moved_on": "text",
        "died_on": "text",
    },
    key=("resident_id",),
    nullable=frozenset({"detail", "moved_on", "died_on"}),
    derived={
        "status": Derived(
            "ACTIVE while the resident lives, DECEASED once a death is reported.", classification="internal"
        ),
    },
)
FAMILY_RELATIONS = Table(
    "family_relations",
    {
        "relation_id": "text",
        "resident_id": "text",
        "relative_resident_id": "text",
        "relation": "text",
        "cause": "text",
        "registered_on": "text",
        "registering_office": "text",
    },
    key=("relation_id",),
    indexes=(("resident_id",), ("relative_resident_id",)),
)
VEHICLES = Table(
    "vehicles",
    {
        "vehicle_id": "text",
        "plate_number": "text",
        "vin": "text",
        "manufacturer": "text",
        "model": "text",
        "model_year": "int",
        "fuel_type": "text",
        "owner_resident_id": "text",
        **ADDRESS_COLUMNS,
        "registered_on": "text",
        "registering_office": "text",
        "transfer_count": "int",
        "previous_owner_resident_id": "text",
        "last_transferred_on": "text",
        "last_transfer_cause": "text",
        "last_transfer_price": "decimal",
    },
    key=("vehicle_id",),
    indexes=(("owner_resident_id",),),
    nullable=frozenset(
        {
            "detail",
            "previous_owner_resident_id",
            "last_transferred_on",
            "last_transfer_cause",
            "last_transfer_price",
        }
    ),
    derived={
        "transfer_count": Derived("How many ownership transfers were registered.", classification="internal"),
        "last_transferred_on": Derived("Date of the last ownership transfer.", source="transferred_on"),
        "last_transfer_cause": Derived("Cause of the last ownership transfer.", source="cause"),
        "last_transfer_price": Derived(
            "Declared price of the last ownership transfer (KRW).", source="transfer_price"
        ),
    },
)


# -- residents -------------------------------------------------------------------------------------


def _resident_registered(rows: WorkingSet, data: Data) -> None:
    rows.put(
        RESIDENTS.name,
        {
            "resident_id": data["resident_id"],
            "registration_number": data["registration_number"],
            "name": data["name"],
            "birth_date": data["birth_date"],
            "sex": data["sex"],
            "nationality": data["nationality"],
            "status": "ACTIVE",
            **address_row(data["address"]),
            "registered_on": data["registered_on"],
            "moved_on": None,
            "died_on": None,
        },
    )


def _resident_moved(rows: WorkingSet, data: Data) -> None:
    resident = known(rows, RESIDENTS, "ResidentMoved", data["resident_id"])
    rows.put(RESIDENTS.name, {**resident, **address_row(data["new_address"]), "moved_on": data["moved_on"]})


def _resident_deceased(rows: WorkingSet, data: Data) -> None:
    resident = known(rows, RESIDENTS, "ResidentDeceased", data["resident_id"])
    rows.put(RESIDENTS.name, {**resident, "status": "DECEASED", "died_on": data["died_on"]})


_RESIDENT_HANDLERS: dict[str, Handler] = {
    "ResidentRegistered": _resident_registered,
    "ResidentMoved": _resident_moved,
    "ResidentDeceased": _resident_deceased,
}


class ResidentsModel:
    """Each resident's identity, current address and status (ACTIVE or DECEASED)."""

    name = "residents"
    topics: tuple[str, ...] = ("localgov.resident",)
    tables: tuple[Table, ...] = (RESIDENTS,)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The resident's row."""
        return hints(RESIDENTS, event.data.get("resident_id"))

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Register, move or bury the resident."""
        dispatch(_RESIDENT_HANDLERS, rows, event)


# -- households ------------------------------------------------------------------------------------


def _relation_registered(rows: WorkingSet, data: Data) -> None:
    principal, relative = data["resident_id"], data["relative_resident_id"]
    if principal == relative:
        raise ProjectionError(f"relation {data['relation_id']!r} relates resident {principal!r} to themself")
    existing = rows.get(FAMILY_RELATIONS.name, data["relation_id"])
    if existing is not None and (existing["resident_id"], existing["relative_resident_id"]) != (
        principal,
        relative,
    ):
        raise ProjectionError(
            f"relation {data['relation_id']!r} is registered between {existing['resident_id']!r} and "
            f"{existing['relative_resident_id']!r}, not {principal!r} and {relative!r}"
        )
    rows.put(
        FAMILY_RELATIONS.name,
        {
            "relation_id": data["relation_id"],
            "resident_id": principal,
            "relative_resident_id": relative,
            "relation": data["relation"],
            "cause": data["cause"],
            "registered_on": data["registered_on"],
            "registering_office": data["registering_office"],
        },
    )


class HouseholdsModel:
    """The family relation registers: one row per relation, from the principal's register."""

    name = "households"
    topics: tuple[str, ...] = ("localgov.family",)
    tables: tuple[Table, ...] = (FAMILY_RELATIONS,)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The relation's row."""
        return hints(FAMILY_RELATIONS, event.data.get("relation_id"))

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Record the relation."""
        dispatch({"FamilyRelationRegistered": _relation_registered}, rows, event)


# -- vehicles --------------------------------------------------------------------------------------


def _vehicle_registered(rows: WorkingSet, data: Data) -> None:
    existing = rows.get(VEHICLES.name, data["vehicle_id"])
    if existing is not None:
        if (existing["vin"], existing["registered_on"]) == (data["vin"], iso(data["registered_on"])):
            return
        raise ProjectionError(
            f"vehicle {data['vehicle_id']!r} is already registered (VIN {existing['vin']}, "
            f"{existing['registered_on']}); a new owner is a VehicleOwnershipTransferred"
        )
    rows.put(
        VEHICLES.name,
        {
            "vehicle_id": data["vehicle_id"],
            "plate_number": data["plate_number"],
            "vin": data["vin"],
            "manufacturer": data["manufacturer"],
            "model": data["model"],
            "model_year": data["model_year"],
            "fuel_type": data["fuel_type"],
            "owner_resident_id": data["owner_resident_id"],
            **address_row(data["base_address"]),
            "registered_on": data["registered_on"],
            "registering_office": data["registering_office"],
            "transfer_count": 0,
        },
    )


def _vehicle_transferred(rows: WorkingSet, data: Data) -> None:
    vehicle = known(rows, VEHICLES, "VehicleOwnershipTransferred", data["vehicle_id"])
    previous, new = data["previous_owner_resident_id"], data["new_owner_resident_id"]
    if previous == new:
        raise ProjectionError(f"vehicle {data['vehicle_id']!r}: transfer from {previous!r} to themself")
    if vehicle["owner_resident_id"] != previous:
        last = (vehicle["previous_owner_resident_id"], vehicle["owner_resident_id"])
        if last == (previous, new) and vehicle["last_transferred_on"] == iso(data["transferred_on"]):
            return
        raise ProjectionError(
            f"vehicle {data['vehicle_id']!r} is owned by {vehicle['owner_resident_id']!r}, "
            f"not by the transfer's previous owner {previous!r}"
        )
    rows.put(
        VEHICLES.name,
        {
            **vehicle,
            "plate_number": data["plate_number"],
            "owner_resident_id": new,
            **address_row(data["base_address"]),
            "transfer_count": vehicle["transfer_count"] + 1,
            "previous_owner_resident_id": previous,
            "last_transferred_on": data["transferred_on"],
            "last_transfer_cause": data["cause"],
            "last_transfer_price": data["transfer_price"],
        },
    )


_VEHICLE_HANDLERS: dict[str, Handler] = {
    "VehicleRegistered": _vehicle_registered,
    "VehicleOwnershipTransferred": _vehicle_transferred,
}


class VehiclesModel:
    """Each registered vehicle's current owner and place of use, with a summary of its transfers."""

    name = "vehicles"
    topics: tuple[str, ...] = ("localgov.vehicle",)
    tables: tuple[Table, ...] = (VEHICLES,)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The vehicle's row."""
        return hints(VEHICLES, event.data.get("vehicle_id"))

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Register or transfer the vehicle."""
        dispatch(_VEHICLE_HANDLERS, rows, event)
