# Generated from the schemas/avsc catalog by producers/events/codegen.py; do not edit by hand.
# Regenerate with: python -m producers.events.codegen
"""Record types shared by several agencies' events (namespace govbus.common)."""

from typing import ClassVar

from pydantic import Field

from producers.events.base import AvroRecord


class Address(AvroRecord):
    """A Korean road-name address."""

    avro_full_name: ClassVar[str] = "govbus.common.Address"

    sido: str = Field(description="Metropolitan city or province (sido), e.g. '서울특별시'.")
    sigungu: str = Field(description="City, county or district (sigungu), e.g. '종로구'.")
    road_address: str = Field(description="Road name and building number, e.g. '세종대로 209'.")
    detail: str | None = Field(default=None, description="Building, floor and unit, if any.")
    postal_code: str = Field(description="Five-digit postal code (guyeok beonho).")
    admin_code: str = Field(description="Ten-digit administrative district code of the eup/myeon/dong.")
