"""Education read models: ``schools`` and ``students`` (with the history of transfers).

``schools`` (education.school → table ``schools``): the school register.
    * SchoolRegistered writes the school; a registration of a known school replaces its row (a
      restated register entry is a correction), so re-applying one is harmless.

``students`` (education.student → tables ``students`` and ``student_transfers``): each student's
current (or, once graduated, last) school, enrolment status and transfer count, and one
``student_transfers`` row per transfer, numbered from 1 per student, as the history.
    * StudentEnrolled enrols the student (ENROLLED) at a school. A student who graduated enrols again
      at the next level under the same id, keeping the transfer count. Refused: an enrolment of a
      student enrolled elsewhere (a change of school is a StudentTransferred); an enrolment restating
      the current one (same school and date) is a copy and changes nothing.
    * StudentTransferred moves an enrolled student from the current school to another, adds a row
      to ``student_transfers`` and counts it; the class number is cleared (it was the old school's).
      Refused: an unknown or graduated student, a transfer to the same school, and a
      ``from_school_id`` that is not the current school, unless the event repeats the last transfer
      applied (same new school and date), which is a copy.
    * StudentGraduated marks the student GRADUATED from the current school. Refused: an unknown
      student, or another school than the current one; restating the graduation is a copy.
    * Every event must name the student's resident: a student id is one resident's for life.
    * Schools are not checked against ``schools``: another topic and adapter, with no ordering
      between the two, so a student may be enrolled before the school's registration is read.

Record types the models do not know are ignored. Applying each event once is the runtime's job,
not the models'; the copy rules only make an event that slips through twice harmless.
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
from consumers.readmodel import Derived, Key, Row, Table, WorkingSet

SCHOOLS = Table(
    "schools",
    {
        "school_id": "text",
        "neis_code": "text",
        "name": "text",
        "level": "text",
        "foundation": "text",
        **ADDRESS_COLUMNS,
        "education_office": "text",
        "opened_on": "text",
    },
    key=("school_id",),
    nullable=frozenset({"detail"}),
)
STUDENTS = Table(
    "students",
    {
        "student_id": "text",
        "resident_id": "text",
        "school_id": "text",
        "status": "text",
        "grade": "int",
        "class_number": "int",
        "admission_type": "text",
        "enrolled_on": "text",
        "transfer_count": "int",
        "last_transferred_on": "text",
        "graduated_on": "text",
        "certificate_number": "text",
    },
    key=("student_id",),
    indexes=(("resident_id",), ("school_id",)),
    nullable=frozenset({"class_number", "last_transferred_on", "graduated_on", "certificate_number"}),
    derived={
        "status": Derived(
            "ENROLLED, or GRADUATED once the graduation is registered.", classification="internal"
        ),
        "transfer_count": Derived("How many school transfers were registered.", classification="internal"),
        "last_transferred_on": Derived("Date of the last school transfer.", source="transferred_on"),
    },
)
STUDENT_TRANSFERS = Table(
    "student_transfers",
    {
        "student_id": "text",
        "sequence": "int",
        "resident_id": "text",
        "from_school_id": "text",
        "to_school_id": "text",
        "grade": "int",
        "reason": "text",
        "transferred_on": "text",
    },
    key=("student_id", "sequence"),
    indexes=(("resident_id",),),
    derived={
        "sequence": Derived(
            "1 for the student's first transfer, 2 for the second...", classification="internal"
        ),
    },
)

ENROLLED = "ENROLLED"
GRADUATED = "GRADUATED"


# -- schools ---------------------------------------------------------------------------------------


def _school_registered(rows: WorkingSet, data: Data) -> None:
    rows.put(
        SCHOOLS.name,
        {
            "school_id": data["school_id"],
            "neis_code": data["neis_code"],
            "name": data["name"],
            "level": data["level"],
            "foundation": data["foundation"],
            **address_row(data["address"]),
            "education_office": data["education_office"],
            "opened_on": data["opened_on"],
        },
    )


class SchoolsModel:
    """The school register: name, level, foundation, address and office of education of each school."""

    name = "schools"
    topics: tuple[str, ...] = ("education.school",)
    tables: tuple[Table, ...] = (SCHOOLS,)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The school's row."""
        return hints(SCHOOLS, event.data.get("school_id"))

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Register the school."""
        dispatch({"SchoolRegistered": _school_registered}, rows, event)


# -- students --------------------------------------------------------------------------------------


def _student(rows: WorkingSet, record: str, data: Data) -> Row:
    """The known student the event is about, after checking the event names the same resident."""
    student = known(rows, STUDENTS, record, data["student_id"])
    _same_resident(student, data)
    return student


def _same_resident(student: Row, data: Data) -> None:
    if student["resident_id"] != data["resident_id"]:
        raise ProjectionError(
            f"student {student['student_id']!r} is resident {student['resident_id']!r}, "
            f"not {data['resident_id']!r}"
        )


def _enrolled(rows: WorkingSet, data: Data) -> None:
    student = rows.get(STUDENTS.name, data["student_id"])
    if student is not None:
        _same_resident(student, data)
        if student["status"] == ENROLLED:
            if (student["school_id"], student["enrolled_on"]) == (
                data["school_id"],
                iso(data["enrolled_on"]),
            ):
                return
            raise ProjectionError(
                f"student {data['student_id']!r} is enrolled at {student['school_id']!r}; "
                "a change of school is a StudentTransferred"
            )
    rows.put(
        STUDENTS.name,
        {
            "student_id": data["student_id"],
            "resident_id": data["resident_id"],
            "school_id": data["school_id"],
            "status": ENROLLED,
            "grade": data["grade"],
            "class_number": data["class_number"],
            "admission_type": data["admission_type"],
            "enrolled_on": data["enrolled_on"],
            "transfer_count": 0 if student is None else student["transfer_count"],
            "last_transferred_on": None if student is None else student["last_transferred_on"],
            "graduated_on": None,
            "certificate_number": None,
        },
    )


def _transferred(rows: WorkingSet, data: Data) -> None:
    student = _student(rows, "StudentTransferred", data)
    origin, target = data["from_school_id"], data["to_school_id"]
    if origin == target:
        raise ProjectionError(f"student {data['student_id']!r}: transfer from {origin!r} to the same school")
    copy = (student["status"], student["school_id"], student["last_transferred_on"])
    if copy == (ENROLLED, target, iso(data["transferred_on"])):
        return
    if student["status"] != ENROLLED or student["school_id"] != origin:
        raise ProjectionError(
            f"student {data['student_id']!r} is {student['status']} at {student['school_id']!r}, "
            f"cannot transfer from {origin!r}"
        )
    sequence = student["transfer_count"] + 1
    rows.put(
        STUDENTS.name,
        {
            **student,
            "school_id": target,
            "grade": data["grade"],
            "class_number": None,
            "transfer_count": sequence,
            "last_transferred_on": data["transferred_on"],
        },
    )
    rows.put(
        STUDENT_TRANSFERS.name,
        {
            "student_id": data["student_id"],
            "sequence": sequence,
            "resident_id": data["resident_id"],
            "from_school_id": origin,
            "to_school_id": target,
            "grade": data["grade"],
            "reason": data["reason"],
            "transferred_on": data["transferred_on"],
        },
    )


def _graduated(rows: WorkingSet, data: Data) -> None:
    student = _student(rows, "StudentGraduated", data)
    if student["school_id"] != data["school_id"]:
        raise ProjectionError(
            f"student {data['student_id']!r} is at {student['school_id']!r}, "
            f"cannot graduate from {data['school_id']!r}"
        )
    if student["status"] == GRADUATED:
        if student["graduated_on"] == iso(data["graduated_on"]):
            return
        raise ProjectionError(
            f"student {data['student_id']!r} graduated already on {student['graduated_on']}"
        )
    rows.put(
        STUDENTS.name,
        {
            **student,
            "status": GRADUATED,
            "graduated_on": data["graduated_on"],
            "certificate_number": data["certificate_number"],
        },
    )


_STUDENT_HANDLERS: dict[str, Handler] = {
    "StudentEnrolled": _enrolled,
    "StudentTransferred": _transferred,
    "StudentGraduated": _graduated,
}


class StudentsModel:
    """Each student's current school and enrolment status, and the history of their transfers."""

    name = "students"
    topics: tuple[str, ...] = ("education.student",)
    tables: tuple[Table, ...] = (STUDENTS, STUDENT_TRANSFERS)

    def prefetch(self, event: DecodedEvent) -> Iterable[tuple[str, Key]]:
        """The student's row (a transfer's history row is new, so there is nothing to load for it)."""
        return hints(STUDENTS, event.data.get("student_id"))

    def apply(self, rows: WorkingSet, event: DecodedEvent) -> None:
        """Enrol, transfer or graduate the student."""
        dispatch(_STUDENT_HANDLERS, rows, event)
