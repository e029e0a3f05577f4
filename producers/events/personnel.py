# Generated from the schemas/avsc catalog by producers/events/codegen.py; do not edit by hand.
# Regenerate with: python -m producers.events.codegen
"""Typed events of the personnel agency: one model per record of its catalog topics."""

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from producers.events.base import AvroEvent


class ServiceType(StrEnum):
    """Service category under the State Public Officials Act."""

    GENERAL = "GENERAL"
    SPECIALIZED = "SPECIALIZED"
    POLITICAL = "POLITICAL"
    SPECIAL = "SPECIAL"


class AppointmentType(StrEnum):
    """How a civil servant was recruited."""

    OPEN_COMPETITIVE = "OPEN_COMPETITIVE"
    CAREER_COMPETITIVE = "CAREER_COMPETITIVE"
    CONTRACT = "CONTRACT"


class CivilServantAppointed(AvroEvent):
    """A person was appointed to the civil service (sinkyu imyong)."""

    avro_full_name: ClassVar[str] = "govbus.personnel.CivilServantAppointed"
    avro_topic: ClassVar[str] = "personnel.civil-servant"
    avro_key_field: ClassVar[str] = "civil_servant_id"

    civil_servant_id: str = Field(
        description=(
            "govbus civil servant id: 'C' followed by 12 digits. The Kafka key of personnel.civil-servant."
        ),
    )
    resident_id: str = Field(
        description="govbus pseudonymous resident id of the appointee: 'R' followed by 12 digits.",
    )
    name: str = Field(description="Full name in Hangul.")
    organization_code: str = Field(
        description=(
            "Seven-digit administrative organisation code (haengjeong gigwan kodeu) of the appointing "
            "ministry or agency, e.g. '1741000' (Ministry of the Interior and Safety)."
        ),
    )
    service_type: ServiceType = Field(
        description=(
            "Service category: general (ilbanjik), specialized (teukjeongjik: police, fire, education...), "
            "political or special."
        ),
    )
    grade: int = Field(
        description=(
            "Grade (geup) of the position: 1 (highest) to 9 (lowest), per the State Public Officials Act."
        ),
    )
    job_series: str = Field(
        description=(
            "Job series (jikryeol) as named in the Public Officials Appointment Decree, e.g. '행정' "
            "(administration) or '전산' (computing)."
        ),
    )
    appointment_type: AppointmentType = Field(
        description=(
            "How the appointee was recruited: open competitive examination, career competitive recruitment "
            "or fixed-term contract."
        ),
    )
    appointed_on: date = Field(description="Date the appointment took effect.")
    probation_ends_on: date | None = Field(default=None, description="Last day of probation (sibo), if any.")


class PromotionType(StrEnum):
    """How a promotion was decided."""

    REVIEW = "REVIEW"
    EXAMINATION = "EXAMINATION"
    SPECIAL = "SPECIAL"


class CivilServantPromoted(AvroEvent):
    """A civil servant was promoted to a higher grade (seungjin)."""

    avro_full_name: ClassVar[str] = "govbus.personnel.CivilServantPromoted"
    avro_topic: ClassVar[str] = "personnel.civil-servant"
    avro_key_field: ClassVar[str] = "civil_servant_id"

    civil_servant_id: str = Field(
        description=(
            "govbus civil servant id: 'C' followed by 12 digits. The Kafka key of personnel.civil-servant."
        ),
    )
    resident_id: str = Field(
        description="govbus pseudonymous resident id of the civil servant: 'R' followed by 12 digits.",
    )
    organization_code: str = Field(
        description=(
            "Seven-digit administrative organisation code (haengjeong gigwan kodeu) of the promoting "
            "ministry or agency, e.g. '1741000' (Ministry of the Interior and Safety)."
        ),
    )
    previous_grade: int = Field(
        description=(
            "Grade (geup) of the position: 1 (highest) to 9 (lowest), per the State Public Officials Act. "
            "The grade before the promotion."
        ),
    )
    new_grade: int = Field(
        description=(
            "Grade (geup) of the position: 1 (highest) to 9 (lowest), per the State Public Officials Act. "
            "The grade after the promotion (one number lower)."
        ),
    )
    job_series: str = Field(
        description=(
            "Job series (jikryeol) as named in the Public Officials Appointment Decree, e.g. '행정' "
            "(administration) or '전산' (computing)."
        ),
    )
    promotion_type: PromotionType = Field(
        description="Promotion by review (simsa), by examination (siheom) or special promotion (teukbyeol).",
    )
    promoted_on: date = Field(description="Date the promotion took effect.")


class RetirementReason(StrEnum):
    """Why a civil servant left the service."""

    AGE_LIMIT = "AGE_LIMIT"
    VOLUNTARY_RESIGNATION = "VOLUNTARY_RESIGNATION"
    HONORARY_RETIREMENT = "HONORARY_RETIREMENT"
    DISMISSAL = "DISMISSAL"
    DEATH_IN_SERVICE = "DEATH_IN_SERVICE"
    TERM_EXPIRED = "TERM_EXPIRED"


class CivilServantRetired(AvroEvent):
    """A civil servant left the service; nothing follows it for this civil servant id."""

    avro_full_name: ClassVar[str] = "govbus.personnel.CivilServantRetired"
    avro_topic: ClassVar[str] = "personnel.civil-servant"
    avro_key_field: ClassVar[str] = "civil_servant_id"

    civil_servant_id: str = Field(
        description=(
            "govbus civil servant id: 'C' followed by 12 digits. The Kafka key of personnel.civil-servant."
        ),
    )
    resident_id: str = Field(
        description="govbus pseudonymous resident id of the civil servant: 'R' followed by 12 digits.",
    )
    organization_code: str = Field(
        description=(
            "Seven-digit administrative organisation code (haengjeong gigwan kodeu) of the last ministry or "
            "agency served, e.g. '1741000' (Ministry of the Interior and Safety)."
        ),
    )
    grade: int = Field(
        description=(
            "Grade (geup) of the position: 1 (highest) to 9 (lowest), per the State Public Officials Act. "
            "The grade on leaving."
        ),
    )
    reason: RetirementReason = Field(
        description=(
            "Why the civil servant left: the statutory age limit (jeongnyeon), resignation (uiwon myeonjik), "
            "honorary early retirement, disciplinary dismissal, death in service or the end of a fixed term."
        ),
    )
    service_years: int = Field(description="Completed years of service, for pension purposes.")
    retired_on: date = Field(description="Last day of service.")


class TransferType(StrEnum):
    """The kind of personnel move."""

    REASSIGNMENT = "REASSIGNMENT"
    INTER_AGENCY_TRANSFER = "INTER_AGENCY_TRANSFER"
    SECONDMENT = "SECONDMENT"


class CivilServantTransferred(AvroEvent):
    """A civil servant was reassigned within or moved between organisations (jeonbo, jeonchul, pagyeon)."""

    avro_full_name: ClassVar[str] = "govbus.personnel.CivilServantTransferred"
    avro_topic: ClassVar[str] = "personnel.civil-servant"
    avro_key_field: ClassVar[str] = "civil_servant_id"

    civil_servant_id: str = Field(
        description=(
            "govbus civil servant id: 'C' followed by 12 digits. The Kafka key of personnel.civil-servant."
        ),
    )
    resident_id: str = Field(
        description="govbus pseudonymous resident id of the civil servant: 'R' followed by 12 digits.",
    )
    from_organization_code: str = Field(
        description=(
            "Seven-digit administrative organisation code (haengjeong gigwan kodeu) of the organisation "
            "left, e.g. '1741000' (Ministry of the Interior and Safety)."
        ),
    )
    to_organization_code: str = Field(
        description=(
            "Seven-digit administrative organisation code (haengjeong gigwan kodeu) of the organisation "
            "joined, e.g. '1741000' (Ministry of the Interior and Safety)."
        ),
    )
    grade: int = Field(
        description=(
            "Grade (geup) of the position: 1 (highest) to 9 (lowest), per the State Public Officials Act. "
            "Unchanged by a transfer."
        ),
    )
    job_series: str = Field(
        description=(
            "Job series (jikryeol) as named in the Public Officials Appointment Decree, e.g. '행정' "
            "(administration) or '전산' (computing)."
        ),
    )
    transfer_type: TransferType = Field(
        description="Reassignment within the organisation, transfer to another organisation or secondment.",
    )
    transferred_on: date = Field(description="Date the transfer took effect.")


EVENTS: tuple[type[AvroEvent], ...] = (
    CivilServantAppointed,
    CivilServantPromoted,
    CivilServantRetired,
    CivilServantTransferred,
)
