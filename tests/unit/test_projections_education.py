"""The education read models (schools, students with their transfers) against the simulated world."""

from __future__ import annotations

from typing import Any

from consumers.projections.education import SchoolsModel, StudentsModel
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
    """Each student's current school, status and transfers, from the events alone."""
    careers: dict[str, dict[str, Any]] = {}
    for event in events_for(StudentsModel()):
        data = event.data
        career = careers.setdefault(data["student_id"], {"transfers": []})
        if event.name == "StudentEnrolled":
            career.update(school=data["school_id"], status="ENROLLED")
        elif event.name == "StudentTransferred":
            career.update(school=data["to_school_id"])
            career["transfers"].append((data["from_school_id"], data["to_school_id"], data["reason"]))
        elif event.name == "StudentGraduated":
            career.update(status="GRADUATED")
    return careers


def test_every_registered_school_is_in_the_register() -> None:
    """schools holds each SchoolRegistered school with its name, level and office of education."""
    schools = replayed("schools").table("schools")
    events = named("SchoolRegistered")
    assert {sid: (r["name"], r["level"], r["education_office"]) for sid, r in schools.items()} == {
        e.data["school_id"]: (e.data["name"], e.data["level"], e.data["education_office"]) for e in events
    }


def test_a_school_registered_again_is_replaced() -> None:
    """A restated register entry replaces the school's row (a correction)."""
    model = SchoolsModel()
    school = named("SchoolRegistered")[0]
    rows = accepted(model, [*until(model, school), copy_of(school, name="세종가온초등학교")]).table("schools")
    assert rows[school.data["school_id"]]["name"] == "세종가온초등학교"


def test_each_student_is_at_the_school_of_their_last_enrolment_or_transfer() -> None:
    """School, status and transfer count follow the student's enrolments, transfers and graduations."""
    students = replayed("students").table("students")
    careers = _careers()
    assert {sid: (r["school_id"], r["status"], r["transfer_count"]) for sid, r in students.items()} == {
        sid: (c["school"], c["status"], len(c["transfers"])) for sid, c in careers.items()
    }
    assert {"ENROLLED", "GRADUATED"} <= {c["status"] for c in careers.values()}


def test_each_transfer_is_one_row_of_the_students_history_in_order() -> None:
    """student_transfers numbers a student's transfers 1, 2, ... with their schools and reason."""
    history = replayed("students").table("student_transfers")
    expected = {
        (sid, number): transfer
        for sid, career in _careers().items()
        for number, transfer in enumerate(career["transfers"], start=1)
    }
    assert {
        key: (r["from_school_id"], r["to_school_id"], r["reason"]) for key, r in history.items()
    } == expected
    assert any(number >= 2 for _, number in expected)


def test_a_graduate_enrolled_at_the_next_level_keeps_their_transfer_count() -> None:
    """A new enrolment after graduation makes the student ENROLLED again, with no graduation date."""
    students = replayed("students").table("students")
    enrolments: dict[str, int] = {}
    for event in named("StudentEnrolled"):
        enrolments[event.data["student_id"]] = enrolments.get(event.data["student_id"], 0) + 1
    again = [sid for sid, count in enrolments.items() if count > 1 and students[sid]["status"] == "ENROLLED"]
    assert again
    assert all(students[sid]["graduated_on"] is None for sid in again)


def test_a_transfer_from_a_school_the_student_has_left_is_refused_without_trace() -> None:
    """A transfer whose from_school_id is not the student's current school is refused and changes no row."""
    model = StudentsModel()
    transfer = named("StudentTransferred")[0]
    bad = copy_of(transfer, from_school_id="S00000000", to_school_id="S00000001")
    assert "cannot transfer from" in str(refusal(model, bad, until(model, transfer)))


def test_a_transfer_to_the_same_school_is_refused_without_trace() -> None:
    """A transfer must change the school."""
    model = StudentsModel()
    transfer = named("StudentTransferred")[0]
    bad = copy_of(transfer, to_school_id=transfer.data["from_school_id"])
    refusal(model, bad, until(model, transfer)[:-1])


def test_a_copy_of_the_last_transfer_adds_no_history() -> None:
    """The last transfer applied again leaves the count and the history as they were."""
    model = StudentsModel()
    transfer = named("StudentTransferred")[0]
    once = accepted(model, until(model, transfer)).rows.tables
    assert accepted(model, [*until(model, transfer), copy_of(transfer)]).rows.tables == once


def test_an_enrolment_elsewhere_while_enrolled_is_refused_without_trace() -> None:
    """A student enrolled at one school cannot be enrolled at another: that is a transfer."""
    model = StudentsModel()
    enrolment = named("StudentEnrolled")[0]
    bad = copy_of(enrolment, school_id="S00000000")
    assert "StudentTransferred" in str(refusal(model, bad, until(model, enrolment)))


def test_an_event_naming_another_resident_is_refused_without_trace() -> None:
    """A student id belongs to one resident: a graduation naming someone else is refused."""
    model = StudentsModel()
    graduation = named("StudentGraduated")[0]
    bad = copy_of(graduation, resident_id="R999999999999")
    refusal(model, bad, until(model, graduation)[:-1])


def test_a_graduation_from_another_school_is_refused_without_trace() -> None:
    """A student graduates from the school they are at, not another."""
    model = StudentsModel()
    graduation = named("StudentGraduated")[0]
    bad = copy_of(graduation, school_id="S00000000")
    refusal(model, bad, until(model, graduation)[:-1])


def test_a_transfer_of_a_graduate_is_refused_without_trace() -> None:
    """A graduated student cannot transfer until enrolled again."""
    model = StudentsModel()
    graduation = named("StudentGraduated")[0]
    data = graduation.data
    bad = retyped(
        graduation,
        "StudentTransferred",
        student_id=data["student_id"],
        resident_id=data["resident_id"],
        from_school_id=data["school_id"],
        to_school_id="S00000000",
        grade=1,
        reason="OTHER",
        transferred_on=data["graduated_on"],
    )
    assert "GRADUATED" in str(refusal(model, bad, until(model, graduation)))
