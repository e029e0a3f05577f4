"""The personnel read model ``civil_servants`` (personnel.civil-servant → table ``civil_servants``).

One row per civil servant id (one career of one resident): the current post (organisation, job
series), grade, service status (SERVING or RETIRED), the resident, and the dates of the last
promotion, transfer and of retirement.

* CivilServantAppointed opens the career as SERVING. An appointment of a known civil servant is a
  copy when it names the same resident and appointment date (ignored); otherwise it is refused, as
  replacing the row would erase the career since.
* CivilServantPromoted sets the new grade. Refused: an unknown or retired civil servant, a new grade
  that is not higher (a lower number) than the previous one, and a previous grade that is not the
  current one, unless the event repeats the last promotion applied (same new grade and date).
* CivilServantTransferred sets the organisation and job series and counts the transfer. Refused: an
  unknown or retired civil servant and an organisation left that is not the current one, unless the
  event repeats the last transfer applied (same organisation joined and date). A reassignment within
  the organisation (same code on both sides) is a transfer too.
* CivilServantRetired closes the career (RETIRED, with reason, date, grade and years of service);
  nothing may follow it. Refused: an unknown civil servant, and a second retirement unless it
  repeats the first (same date), which is a copy.
* Every event must name the civil servant's resident; grades must lie in 1..9.
* A death does not retire anyone here: the retirement is personnel's decision, published as its own
  event (until then the row still says SERVING).

Record types the model does not know are ignored. Applying each event once is the runtime's job,
not the models'; the copy rules only make an event that slips through twice harmless.
"""

from __future__ import annotations

from collections.abc import Iterable

from bus.errors import ProjectionError
from consumers.events import DecodedEvent
from consumers.projections.common import Data, Handler, dispatch, hints, iso, known
from consumers.readmodel import Derived, Key, Row, Table, WorkingSet

CIVIL_SERVANTS = Table(
    "civil_servants",
    {
        "civil_servant_id": "text",
        "resident_id": "text",
        "name": "text",
        "status": "text",
        "organization_code": "text",
        "service_type": "text",
        "job_series": "text",
        "grade": "int",
        "appointment_type": "text",
        "appointed_on": "text",
        "probation_ends_on": "text",
        "promotion_count": "int",
        "last_promoted_on": "text",
        "transfer_count": "int",
        "last_transferred_on": "text",
        "retired_on": "text",
        "retirement_reason": "text",
        "service_years": "int",
    },
    key=("civil_servant_id",),
    indexes=(("resident_id",), ("organization_code",)),
    nullable=frozenset(
        {
            "probation_ends_on",
            "last_promoted_on",
            "last_transferred_on",
            "retired_on",
            "retirement_reason",
            "service_years",
        }
    ),
    derived={
        "status": Derived(
            "SERVING, or RETIRED once the retirement is registered.", classification="internal"
        ),
        "promotion_count": Derived("How many promotions were registered.", classification="internal"),
        "last_promoted_on": Derived("Date of the last promotion.", source="promoted_on"),
        "transfer_count": Derived("How many transfers were registered.", classification="internal"),
        "last_transferred_on": Derived("Date of the last transfer.", source="transferred_on"),
        "retirement_reason": Derived("Why the civil servant retired.", source="reason"),
    },
)

SERVING = "SERVING"
RETIRED = "RETIRED"
GRADES = range(1, 10)


def _grade(value: int, what: str) -> int:
    if value not in GRADES:
        raise ProjectionError(f"{what} {value} is not a grade (1 to 9)")
    return value


def _servant(rows: WorkingSet, record: str, data: Data) -> Row:
    """The known civil servant the event is about, after checking it names the same resident."""
    servant = known(rows, CIVIL_SERVANTS, record, data["civil_servant_id"])
    if servant["resident_id"] != data["resident_id"]:
        raise ProjectionError(
            f"civil servant {servant['civil_servant_id']!r} is resident {servant['resident_id']!r}, "
            f"not {data['resident_id']!r}"
        )
    return servant


def _serving(servant: Row, record: str) -> None:
    if servant["status"] != SERVING:
        raise ProjectionError(
            f"{record} for civil servant {servant['civil_servant_id']!r}, retired on {servant['retired_on']}"
        )


def _appointed(rows: WorkingSet, data: Data) -> None:
    existing = rows.get(CIVIL_SERVANTS.name, data["civil_servant_id"])
    if existing is not None:
        if (existing["resident_id"], existing["appointed_on"]) == (
            data["resident_id"],
            iso(data["appointed_on"]),
        ):
            return
        raise ProjectionError(
            f"civil servant {data['civil_servant_id']!r} was appointed already on {existing['appointed_on']}"
        )
    rows.put(
        CIVIL_SERVANTS.name,
        {
            "civil_servant_id": data["civil_servant_id"],
            "resident_id": data["resident_id"],
            "name": data["name"],
            "status": SERVING,
            "organization_code": data["organization_code"],
            "service_type": data["service_type"],
            "job_series": data["job_series"],
            "grade": _grade(data["grade"], "grade"),
            "appointment_type": data["appointment_type"],
            "appointed_on": data["appointed_on"],
            "probation_ends_on": data["probation_ends_on"],
            "promotion_count": 0,
            "transfer_count": 0,
        },
    )


def _promoted(rows: WorkingSet, data: Data) -> None:
    servant = _servant(rows, "CivilServantPromoted", data)
    previous, new = _grade(data["previous_grade"], "previous grade"), _grade(data["new_grade"], "new grade")
    if (servant["grade"], servant["last_promoted_on"]) == (new, iso(data["promoted_on"])):
        return
    _serving(servant, "CivilServantPromoted")
    if new >= previous:
        raise ProjectionError(
            f"civil servant {data['civil_servant_id']!r}: grade {previous} to {new} is no promotion"
        )
    if servant["grade"] != previous:
        raise ProjectionError(
            f"civil servant {data['civil_servant_id']!r} holds grade {servant['grade']}, not {previous}"
        )
    rows.put(
        CIVIL_SERVANTS.name,
        {
            **servant,
            "grade": new,
            "job_series": data["job_series"],
            "promotion_count": servant["promotion_count"] + 1,
            "last_promoted_on": data["promoted_on"],
        },
    )


def _transferred(rows: WorkingSet, data: Data) -> None:
    servant = _servant(rows, "CivilServantTransferred", data)
    origin, target = data["from_organization_code"], data["to_organization_code"]
    if servant["transfer_count"] and (servant["organization_code"], servant["last_transferred_on"]) == (
        target,
        iso(data["transferred_on"]),
    ):
        return
    _serving(servant, "CivilServantTransferred")
    if servant["organization_code"] != origin:
        raise ProjectionError(
            f"civil servant {data['civil_servant_id']!r} serves in {servant['organization_code']!r}, "
            f"cannot transfer from {origin!r}"
        )
    rows.put(
        CIVIL_SERVANTS.name,
        {
            **servant,
            "organization_code": target,
            "job_series": data["job_series"],
            "grade": _grade(data["grade"], "grade"),
            "transfer_count": servant["transfer_count"] + 1,
            "last_transferred_on": data["transferred_on"],
        },
    )


def _retired(rows: WorkingSet, data: Data) -> None:
    servant = _servant(rows, "CivilServantRetired", data)
    if servant["status"] == RETIRED:
        if servant["retired_on"] == iso(data["retired_on"]):
            return
        _serving(servant, "CivilServantRetired")
    rows.put(
        CIVIL_SERVANTS.name,
        {
            **servant,
            "status": RETIRED,
            "organization_code": data["organization_code"],
            "grade": _grade(data["grade"], "grade"),
            "retired_on": data["retired_on"],
            "retirement_reason": data["reason"],
            "service_years": data["service_years"],
        },
    )


_HANDLERS: dict[str, Handler] = {
    "CivilServantAppointed": _appointed,
    "CivilServantPromoted": _promoted,
    "CivilServantTransferred": _transferred,
    "CivilServantRetired": _retired,
}


class CivilServantsModel:
    """Each civil servant's current post, grade and service status."""

    name = "civil_servants"
    topics: tuple[str, ...] = ("personnel.civil-servant",)
    tables: tuple[Table, ...] = (CIVIL_SERVANTS,)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The civil servant's row."""
        return hints(CIVIL_SERVANTS, event.data.get("civil_servant_id"))

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Appoint, promote, transfer or retire the civil servant."""
        dispatch(_HANDLERS, rows, event)
