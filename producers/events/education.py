# Generated from the schemas/avsc catalog by producers/events/codegen.py; do not edit by hand.
# Regenerate with: python -m producers.events.codegen
"""Typed events of the education agency: one model per record of its catalog topics."""

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from producers.events.base import AvroEvent
from producers.events.common import Address


class SchoolLevel(StrEnum):
    """School level under the Elementary and Secondary Education Act."""

    ELEMENTARY = "ELEMENTARY"
    MIDDLE = "MIDDLE"
    HIGH = "HIGH"


class SchoolFoundation(StrEnum):
    """Who founded and runs a school."""

    NATIONAL = "NATIONAL"
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


class SchoolRegistered(AvroEvent):
    """A school was entered in the school register of its office of education (NEIS)."""

    avro_full_name: ClassVar[str] = "govbus.education.SchoolRegistered"
    avro_topic: ClassVar[str] = "education.school"
    avro_key_field: ClassVar[str] = "school_id"

    school_id: str = Field(
        description="govbus school id: 'S' followed by 8 digits. The Kafka key of education.school.",
    )
    neis_code: str = Field(description="NEIS standard school code (SD_SCHUL_CODE): 7 digits, e.g. '7010057'.")
    name: str = Field(description="School name in Hangul, e.g. '서울세종초등학교'.")
    level: SchoolLevel = Field(
        description="School level: elementary (grades 1-6), middle (1-3) or high (1-3).",
    )
    foundation: SchoolFoundation = Field(
        description=(
            "Who founded and runs the school: the state, a provincial office of education or a private "
            "foundation."
        ),
    )
    address: Address = Field(description="The school's address.")
    education_office: str = Field(
        description=(
            "NEIS code of the metropolitan or provincial office of education (ATPT_OFCDC_SC_CODE): a capital "
            "letter and two digits, e.g. 'B10' (Seoul)."
        ),
    )
    opened_on: date = Field(description="Date the school opened.")


class AdmissionType(StrEnum):
    """How a student came to be admitted."""

    ENTRANCE = "ENTRANCE"
    READMISSION = "READMISSION"
    ADMISSION_FROM_ABROAD = "ADMISSION_FROM_ABROAD"


class StudentEnrolled(AvroEvent):
    """A student was admitted to a school."""

    avro_full_name: ClassVar[str] = "govbus.education.StudentEnrolled"
    avro_topic: ClassVar[str] = "education.student"
    avro_key_field: ClassVar[str] = "student_id"

    student_id: str = Field(
        description="govbus student id: 'P' followed by 12 digits. The Kafka key of education.student.",
    )
    resident_id: str = Field(
        description="govbus pseudonymous resident id of the student: 'R' followed by 12 digits.",
    )
    school_id: str = Field(description="govbus school id: 'S' followed by 8 digits. The admitting school.")
    grade: int = Field(
        description="School year (hangnyeon): 1-6 in elementary school, 1-3 in middle and high school.",
    )
    class_number: int | None = Field(default=None, description="Homeroom class number (ban), once assigned.")
    admission_type: AdmissionType = Field(
        description=(
            "How the student was admitted: regular entrance (iphak), readmission (jaeiphak) or admission "
            "from abroad (pyeoniphak)."
        ),
    )
    enrolled_on: date = Field(description="Date the enrolment took effect.")


class StudentGraduated(AvroEvent):
    """A student completed the course of a school and graduated."""

    avro_full_name: ClassVar[str] = "govbus.education.StudentGraduated"
    avro_topic: ClassVar[str] = "education.student"
    avro_key_field: ClassVar[str] = "student_id"

    student_id: str = Field(
        description="govbus student id: 'P' followed by 12 digits. The Kafka key of education.student.",
    )
    resident_id: str = Field(
        description="govbus pseudonymous resident id of the student: 'R' followed by 12 digits.",
    )
    school_id: str = Field(
        description="govbus school id: 'S' followed by 8 digits. The school graduated from.",
    )
    certificate_number: str | None = Field(
        default=None,
        description="Number in the school's graduation register (joreop daejang), if issued.",
    )
    graduated_on: date = Field(description="Date of graduation.")


class TransferReason(StrEnum):
    """Why a student changed school."""

    RESIDENCE_CHANGE = "RESIDENCE_CHANGE"
    FAMILY_CIRCUMSTANCES = "FAMILY_CIRCUMSTANCES"
    SCHOOL_VIOLENCE_MEASURE = "SCHOOL_VIOLENCE_MEASURE"
    OTHER = "OTHER"


class StudentTransferred(AvroEvent):
    """A student moved from one school to another (jeonhak)."""

    avro_full_name: ClassVar[str] = "govbus.education.StudentTransferred"
    avro_topic: ClassVar[str] = "education.student"
    avro_key_field: ClassVar[str] = "student_id"

    student_id: str = Field(
        description="govbus student id: 'P' followed by 12 digits. The Kafka key of education.student.",
    )
    resident_id: str = Field(
        description="govbus pseudonymous resident id of the student: 'R' followed by 12 digits.",
    )
    from_school_id: str = Field(description="govbus school id: 'S' followed by 8 digits. The school left.")
    to_school_id: str = Field(description="govbus school id: 'S' followed by 8 digits. The school joined.")
    grade: int = Field(
        description=(
            "School year (hangnyeon): 1-6 in elementary school, 1-3 in middle and high school. The grade in "
            "the new school."
        ),
    )
    reason: TransferReason = Field(description="Why the student changed school.")
    transferred_on: date = Field(description="Date the student joined the new school.")


EVENTS: tuple[type[AvroEvent], ...] = (
    SchoolRegistered,
    StudentEnrolled,
    StudentGraduated,
    StudentTransferred,
)
