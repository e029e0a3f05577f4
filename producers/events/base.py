"""The base classes and Avro-specific field types of the generated event models.

The models themselves are generated from the catalog by :mod:`producers.events.codegen`; this module
holds what they share: conversion to and from the plain values fastavro reads and writes, and the
field types that make a model accept exactly the values its Avro field can carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal
from enum import Enum
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema


class AvroRecord(BaseModel):
    """An immutable model of one Avro record type; nested records (``Address``) derive from it directly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    avro_full_name: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The record as fastavro's writers take it: enums as str, nested records as dicts."""
        return {name: _avro_value(getattr(self, name)) for name in type(self).model_fields}

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Self:
        """Validate a record as fastavro's readers return it (enums as str, nested records as dicts)."""
        return cls.model_validate(data)


class AvroEvent(AvroRecord):
    """A catalog event: a top-level record published on ``avro_topic`` keyed by ``avro_key_field``."""

    avro_topic: ClassVar[str]
    avro_key_field: ClassVar[str]

    @property
    def key(self) -> str:
        """The aggregate id the event is keyed by on its topic."""
        return str(getattr(self, self.avro_key_field))


def _avro_value(value: Any) -> Any:
    if isinstance(value, AvroRecord):
        return value.to_avro()
    if isinstance(value, Enum):
        return value.value
    return value


@dataclass(frozen=True)
class AvroDecimal:
    """``Annotated`` metadata for an Avro decimal: at most ``precision`` digits, ``scale`` of them decimals.

    Accepted values are rescaled to exactly ``scale`` places (``Decimal("1.0")`` becomes ``Decimal("1")``
    at scale 0), because fastavro refuses a Decimal whose exponent differs from the schema's scale.
    """

    precision: int
    scale: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """A decimal schema with the digit limits, followed by the rescaling."""
        checked = core_schema.decimal_schema(max_digits=self.precision, decimal_places=self.scale)
        return core_schema.no_info_after_validator_function(self._rescale, checked)

    def _rescale(self, value: Decimal) -> Decimal:
        # The digit limits are checked already, so the result fits ``precision`` digits and never rounds.
        return value.quantize(Decimal(1).scaleb(-self.scale), context=Context(prec=self.precision))


def _to_millis(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


TimestampMillis = Annotated[AwareDatetime, AfterValidator(_to_millis)]
"""An Avro ``timestamp-millis``: a timezone-aware datetime, truncated to the millisecond Avro keeps."""
