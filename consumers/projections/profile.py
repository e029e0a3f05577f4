"""The citizen profile: one resident's record joined across every agency's read models.

The "once-only" view a ministry asks for instead of a paper certificate: the resident's identity,
address and status (localgov), family relations (localgov), vehicles owned (localgov), enrolment
(education), public service (personnel) and active benefits (finance).

It is a **query, not a projection**. :func:`citizen_profile` reads the rows of the models it joins
when it is asked, through :class:`~consumers.readmodel.RowSource` ``load`` (by primary key) and
``select`` (by an indexed column) only, so it runs on any store and on ``MemoryRows`` alike. The
decision, and why:

* it is always consistent with the models it joins: there is no second copy of their rows that could
  fall behind them, disagree with them, or need a rebuild of its own when one of them is rebuilt;
* a profile kept as a projection would read seven topics whose only ordering is per key, so it
  would have to hold rows for residents it has not seen yet and reconcile them later: exactly what
  the models it joins already do, each for its own topic;
* the price is a few keyed reads per profile (one resident is asked for at a time), not a write on
  every event of every agency.

Each model is kept by its own adapter, so a profile read while events flow may show one agency's
record newer than another's (a move already registered, the school transfer it causes not yet).
``sources`` lists the provenance of every row the profile was built from (agency, event id, topic,
partition, offset, event time), so a reader sees how current each part is.

The resident registration number is left out: the pseudonymous ``resident_id`` identifies the
resident, and the number stays in the ``residents`` model, where the gateway masks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from consumers.projections.common import ADDRESS_COLUMNS
from consumers.projections.education import SCHOOLS, STUDENTS
from consumers.projections.finance import ACTIVE, BENEFIT_RECIPIENTS, BENEFITS
from consumers.projections.localgov import FAMILY_RELATIONS, RESIDENTS, VEHICLES
from consumers.projections.personnel import CIVIL_SERVANTS
from consumers.readmodel import PROVENANCE, Row, RowSource, Table

Profile = dict[str, Any]


def citizen_profile(source: RowSource, resident_id: str) -> Profile | None:
    """The profile of ``resident_id`` as the read models in ``source`` hold it; None if unregistered."""
    found = source.load(RESIDENTS, [(resident_id,)])
    if not found:
        return None
    resident = found[0]
    sources = _Sources()
    sources.add(RESIDENTS, resident)

    relations = sources.select(source, FAMILY_RELATIONS, "resident_id", resident_id)
    relatives = _by_id(
        RESIDENTS, sources.load(source, RESIDENTS, {r["relative_resident_id"] for r in relations})
    )
    students = sources.select(source, STUDENTS, "resident_id", resident_id)
    schools = _by_id(SCHOOLS, sources.load(source, SCHOOLS, {s["school_id"] for s in students}))
    benefits = sources.select(source, BENEFITS, "recipient_resident_id", resident_id)
    summary = sources.load(source, BENEFIT_RECIPIENTS, {resident_id})

    return {
        "resident_id": resident_id,
        **{c: resident[c] for c in ("name", "birth_date", "sex", "nationality", "status")},
        **{c: resident[c] for c in ("registered_on", "moved_on", "died_on")},
        "address": {c: resident[c] for c in ADDRESS_COLUMNS},
        "household": [
            {
                **_columns(FAMILY_RELATIONS, relation, omit="resident_id"),
                "relative_name": relatives.get(relation["relative_resident_id"], {}).get("name"),
                "relative_status": relatives.get(relation["relative_resident_id"], {}).get("status"),
            }
            for relation in relations
        ],
        "vehicles": [
            _columns(VEHICLES, vehicle, omit="owner_resident_id")
            for vehicle in sources.select(source, VEHICLES, "owner_resident_id", resident_id)
        ],
        "enrolment": [
            {
                **_columns(STUDENTS, student, omit="resident_id"),
                "school_name": schools.get(student["school_id"], {}).get("name"),
                "school_level": schools.get(student["school_id"], {}).get("level"),
            }
            for student in students
        ],
        "public_service": [
            _columns(CIVIL_SERVANTS, servant, omit="resident_id")
            for servant in sources.select(source, CIVIL_SERVANTS, "resident_id", resident_id)
        ],
        "benefits": {
            "active": [
                _columns(BENEFITS, benefit, omit="recipient_resident_id")
                for benefit in benefits
                if benefit["status"] == ACTIVE
            ],
            "grants": summary[0]["grants"] if summary else 0,
            "total_paid": summary[0]["total_paid"] if summary else Decimal(0),
            "suspended": summary[0]["suspended"] if summary else False,
        },
        "sources": sources.rows,
    }


class _Sources:
    """Reads rows in key order and remembers each one's provenance for the profile's ``sources``."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, table: Table, row: Row) -> None:
        self.rows.append(
            {"table": table.name, "key": list(table.key_of(row)), **{c: row[c] for c, _ in PROVENANCE}}
        )

    def select(self, source: RowSource, table: Table, column: str, value: Any) -> list[Row]:
        return self._record(table, source.select(table, column, value))

    def load(self, source: RowSource, table: Table, ids: Iterable[Any]) -> list[Row]:
        wanted = sorted(i for i in ids if i is not None)
        return self._record(table, source.load(table, [(i,) for i in wanted]) if wanted else [])

    def _record(self, table: Table, rows: list[Row]) -> list[Row]:
        ordered = sorted(rows, key=lambda row: tuple(str(part) for part in table.key_of(row)))
        for row in ordered:
            self.add(table, row)
        return ordered


def _by_id(table: Table, rows: list[Row]) -> dict[Any, Row]:
    """Rows of a table with a one-column key, by that key."""
    return {table.key_of(row)[0]: row for row in rows}


def _columns(table: Table, row: Row, omit: str) -> dict[str, Any]:
    """The row's declared columns (provenance goes to ``sources``) without the resident's id."""
    return {c: row.get(c) for c in table.columns if c != omit}
