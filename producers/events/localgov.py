# Generated from the schemas/avsc catalog by producers/events/codegen.py; do not edit by hand.
# Regenerate with: python -m producers.events.codegen
"""Typed events of the localgov agency: one model per record of its catalog topics."""

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from producers.events.base import AvroDecimal, AvroEvent
from producers.events.common import Address


class FamilyRelation(StrEnum):
    """What the relative is to the principal."""

    SPOUSE = "SPOUSE"
    CHILD = "CHILD"
    PARENT = "PARENT"
    ADOPTED_CHILD = "ADOPTED_CHILD"
    ADOPTIVE_PARENT = "ADOPTIVE_PARENT"


class FamilyRegistrationCause(StrEnum):
    """The report that caused the relation to be registered."""

    BIRTH_REPORT = "BIRTH_REPORT"
    MARRIAGE_REPORT = "MARRIAGE_REPORT"
    ADOPTION_REPORT = "ADOPTION_REPORT"
    ACKNOWLEDGEMENT_REPORT = "ACKNOWLEDGEMENT_REPORT"


class FamilyRelationRegistered(AvroEvent):
    """A relation was entered in a resident's family relation register (gajok gwangye deungnokbu)."""

    avro_full_name: ClassVar[str] = "govbus.localgov.FamilyRelationRegistered"
    avro_topic: ClassVar[str] = "localgov.family"
    avro_key_field: ClassVar[str] = "resident_id"

    resident_id: str = Field(
        description=(
            "govbus pseudonymous resident id of the principal whose register records the relation: 'R' "
            "followed by 12 digits. The Kafka key of localgov.family."
        ),
    )
    relation_id: str = Field(description="govbus id of this registered relation: 'F' followed by 12 digits.")
    relative_resident_id: str = Field(
        description="govbus pseudonymous resident id of the relative: 'R' followed by 12 digits.",
    )
    relation: FamilyRelation = Field(description="What the relative is to the principal.")
    cause: FamilyRegistrationCause = Field(
        description="The report (singo) that caused the relation to be registered.",
    )
    registered_on: date = Field(description="Date the relation was entered in the register.")
    registering_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that made the entry.",
    )


class DeathReportType(StrEnum):
    """How the death came to the registry's knowledge."""

    DEATH_REPORT = "DEATH_REPORT"
    OFFICIAL_NOTICE = "OFFICIAL_NOTICE"
    DECLARATION_OF_DISAPPEARANCE = "DECLARATION_OF_DISAPPEARANCE"


class ResidentDeceased(AvroEvent):
    """A resident's death was reported (samang singo) and the registration closed; nothing follows it."""

    avro_full_name: ClassVar[str] = "govbus.localgov.ResidentDeceased"
    avro_topic: ClassVar[str] = "localgov.resident"
    avro_key_field: ClassVar[str] = "resident_id"

    resident_id: str = Field(description="govbus pseudonymous resident id: 'R' followed by 12 digits.")
    died_on: date = Field(description="Date of death as stated in the report.")
    reported_on: date = Field(
        description="Date the death was reported to the office (within a month by law).",
    )
    place_sido: str = Field(
        description="Metropolitan city or province (sido) where the death occurred, e.g. '서울특별시'.",
    )
    place_sigungu: str = Field(
        description="City, county or district (sigungu) where the death occurred, e.g. '종로구'.",
    )
    report_type: DeathReportType = Field(
        description=(
            "How the death came to the registry's knowledge: a family member's death report, an official "
            "notice (by a prison, hospital or the police) or a court's declaration of disappearance."
        ),
    )
    reporting_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that received the report.",
    )


class ResidentMoved(AvroEvent):
    """A resident reported a move-in (jeonip singo); the new address is the domicile from moved_on."""

    avro_full_name: ClassVar[str] = "govbus.localgov.ResidentMoved"
    avro_topic: ClassVar[str] = "localgov.resident"
    avro_key_field: ClassVar[str] = "resident_id"

    resident_id: str = Field(description="govbus pseudonymous resident id: 'R' followed by 12 digits.")
    new_address: Address = Field(description="The new domicile address.")
    moved_on: date = Field(description="Date the resident moved in.")
    reported_on: date = Field(description="Date the move was reported to the office (within 14 days by law).")
    receiving_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that received the report.",
    )


class Sex(StrEnum):
    """Sex as recorded in the resident registry."""

    MALE = "MALE"
    FEMALE = "FEMALE"


class ResidentRegistered(AvroEvent):
    """A person was entered in the resident registry of a si/gun/gu office (birth, immigration or first
    registration).
    """

    avro_full_name: ClassVar[str] = "govbus.localgov.ResidentRegistered"
    avro_topic: ClassVar[str] = "localgov.resident"
    avro_key_field: ClassVar[str] = "resident_id"

    resident_id: str = Field(
        description=(
            "govbus pseudonymous resident id: 'R' followed by 12 digits. Stable for life; the Kafka key of "
            "localgov.resident."
        ),
    )
    registration_number: str = Field(
        description=(
            "Resident registration number (jumin deungnok beonho), 'YYMMDD-GNNNNNN'. Never leaves the "
            "gateway unmasked."
        ),
    )
    name: str = Field(description="Full name in Hangul as registered.")
    birth_date: date = Field(description="Date of birth.")
    sex: Sex = Field(description="Sex as recorded in the resident registry.")
    nationality: str = Field(default="KR", description="ISO 3166-1 alpha-2 nationality code.")
    address: Address = Field(description="Registered domicile address.")
    registered_on: date = Field(description="Date the registration took effect.")
    registering_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that made the registration.",
    )


class TransferCause(StrEnum):
    """Why the ownership changed."""

    SALE = "SALE"
    GIFT = "GIFT"
    INHERITANCE = "INHERITANCE"
    AUCTION = "AUCTION"


class VehicleOwnershipTransferred(AvroEvent):
    """A registered vehicle changed owner (ijeon deungnok)."""

    avro_full_name: ClassVar[str] = "govbus.localgov.VehicleOwnershipTransferred"
    avro_topic: ClassVar[str] = "localgov.vehicle"
    avro_key_field: ClassVar[str] = "vehicle_id"

    vehicle_id: str = Field(
        description="govbus vehicle id: 'V' followed by 12 digits. The Kafka key of localgov.vehicle.",
    )
    plate_number: str = Field(
        description=(
            "Registration plate number: two or three digits, a Hangul syllable and four digits, e.g. "
            "'12가3456' or '123가4567'. The plate after the transfer."
        ),
    )
    previous_owner_resident_id: str = Field(
        description="govbus pseudonymous resident id of the previous owner: 'R' followed by 12 digits.",
    )
    new_owner_resident_id: str = Field(
        description="govbus pseudonymous resident id of the new owner: 'R' followed by 12 digits.",
    )
    cause: TransferCause = Field(description="Why the ownership changed.")
    transfer_price: Annotated[Decimal, AvroDecimal(18, 0)] | None = Field(
        default=None,
        description="Declared transfer price in KRW (won); null for gifts and inheritance.",
    )
    base_address: Address = Field(
        description="The vehicle's principal place of use (sayong bongeoji) under the new owner.",
    )
    transferred_on: date = Field(description="Date the transfer took effect.")
    registering_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that recorded the transfer.",
    )


class FuelType(StrEnum):
    """Fuel or power source of a vehicle."""

    GASOLINE = "GASOLINE"
    DIESEL = "DIESEL"
    LPG = "LPG"
    HYBRID = "HYBRID"
    ELECTRIC = "ELECTRIC"
    HYDROGEN = "HYDROGEN"


class VehicleRegistered(AvroEvent):
    """A vehicle was newly registered (sinkyu deungnok) with a si/gun/gu vehicle registration office."""

    avro_full_name: ClassVar[str] = "govbus.localgov.VehicleRegistered"
    avro_topic: ClassVar[str] = "localgov.vehicle"
    avro_key_field: ClassVar[str] = "vehicle_id"

    vehicle_id: str = Field(
        description="govbus vehicle id: 'V' followed by 12 digits. The Kafka key of localgov.vehicle.",
    )
    plate_number: str = Field(
        description=(
            "Registration plate number: two or three digits, a Hangul syllable and four digits, e.g. "
            "'12가3456' or '123가4567'."
        ),
    )
    vin: str = Field(
        description=(
            "Vehicle identification number (chadae beonho): 17 characters, digits and capital letters except "
            "I, O and Q."
        ),
    )
    manufacturer: str = Field(description="Manufacturer as registered, e.g. '현대자동차'.")
    model: str = Field(description="Model name as registered, e.g. '아반떼'.")
    model_year: int = Field(description="Model year, e.g. 2024.")
    fuel_type: FuelType = Field(description="Fuel or power source.")
    owner_resident_id: str = Field(
        description="govbus pseudonymous resident id of the registered owner: 'R' followed by 12 digits.",
    )
    base_address: Address = Field(
        description="The vehicle's principal place of use (sayong bongeoji), usually the owner's domicile.",
    )
    registered_on: date = Field(description="Date the registration took effect.")
    registering_office: str = Field(
        description="Seven-digit code of the si/gun/gu office that registered the vehicle.",
    )


EVENTS: tuple[type[AvroEvent], ...] = (
    FamilyRelationRegistered,
    ResidentDeceased,
    ResidentMoved,
    ResidentRegistered,
    VehicleOwnershipTransferred,
    VehicleRegistered,
)
