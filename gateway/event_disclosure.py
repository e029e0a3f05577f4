"""What of one decoded event an organisation may see: the catalog's classifications under its agreement.

An event's payload is walked field by field, top down, with each field's dotted path (``address.sido``):

- a ``public`` or ``internal`` field passes; a record passes by passing each of its own fields through the
  same rule (so a personal field inside a public record, as ``address.road_address`` of a school, is
  still protected);
- a ``personal`` or ``sensitive`` field that the agreement grants (:meth:`Agreement.grants`: it names the
  field or a record enclosing it) passes in clear, everything inside it included;
- a ``personal`` or ``sensitive`` field it does not grant is replaced by its catalog mask
  (:data:`schemas.masks.MASKS`) when the catalog names one, and withheld (``None``) otherwise. The
  decision is made on the field as a whole: a withheld record takes everything inside it along, its
  public fields too (``new_address`` of a resident who moved is personal: a ministry without it does
  not learn the district either);
- a field the catalog does not describe is withheld (fail closed; a payload decoded with the catalog's
  reader schema never has one).

Values come out as JSON-ready as the catalog's JSON form has them: dates and datetimes as ISO 8601 text,
decimals as text, bytes as base64. A mask sees that text form (``birth-year`` reads ``1990-05-01``), and a
value of a shape a mask does not expect is hidden entirely by the mask itself.

Besides the payload, :class:`Disclosed` says which paths went out in clear (leaves only), which protected
fields the agreement disclosed in clear, which were masked and which withheld, and the resident ids present
in clear (fields named ``resident_id`` or ending in
``_resident_id``): what an audit entry of the disclosure names.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from gateway.agreements import Agreement
from schemas.catalog import EventType
from schemas.masks import MASKS

PROTECTED = frozenset({"personal", "sensitive"})
"""Classifications shown in clear only to an agreement that grants the field."""
RESIDENT_ID = "resident_id"
Mask = Callable[[Any], str]


@dataclass(frozen=True)
class FieldRule:
    """How one field path is disclosed: its classification and its mask, if the catalog names one."""

    classification: str
    mask: Mask | None = None

    @property
    def protected(self) -> bool:
        """Whether the field needs the agreement's grant to be shown in clear."""
        return self.classification in PROTECTED


def field_rules(event_type: EventType) -> dict[str, FieldRule]:
    """Dotted field path → its rule, for every field of ``event_type`` at every nesting level."""
    masks = event_type.masks()
    return {
        path: FieldRule(classification, MASKS[masks[path]] if path in masks else None)
        for path, classification in event_type.classifications().items()
    }


@dataclass
class Disclosed:
    """One payload as an organisation may see it, and what it holds in clear, masked and withheld."""

    data: dict[str, Any]
    clear: set[str] = field(default_factory=set)
    """Leaf field paths shown in clear (a ``None`` value included)."""
    disclosed: set[str] = field(default_factory=set)
    """Personal or sensitive fields shown in clear because the agreement grants them (what an audit
    names: the field as granted, ``address`` rather than each of its leaves)."""
    masked: set[str] = field(default_factory=set)
    withheld: set[str] = field(default_factory=set)
    residents: set[str] = field(default_factory=set)
    """Resident ids in clear: values of fields named ``resident_id`` or ending in ``_resident_id``."""


class EventDisclosure:
    """Discloses payloads of catalog event types; each type's rules are computed once and kept."""

    def __init__(self) -> None:
        self._rules: dict[str, dict[str, FieldRule]] = {}

    def rules(self, event_type: EventType) -> dict[str, FieldRule]:
        """The field rules of ``event_type`` (computed on first use)."""
        found = self._rules.get(event_type.full_name)
        if found is None:
            found = self._rules[event_type.full_name] = field_rules(event_type)
        return found

    def disclose(self, event_type: EventType, data: Mapping[str, Any], agreement: Agreement) -> Disclosed:
        """``data`` (a payload of ``event_type``) as ``agreement`` lets its organisation see it."""
        return disclose(self.rules(event_type), data, agreement)


def disclose(rules: Mapping[str, FieldRule], data: Mapping[str, Any], agreement: Agreement) -> Disclosed:
    """``data`` under ``rules`` (:func:`field_rules`) as ``agreement`` lets its organisation see it."""
    out = Disclosed({})
    out.data = _record(data, "", rules, agreement, out)
    return out


def _record(
    data: Mapping[str, Any], prefix: str, rules: Mapping[str, FieldRule], agreement: Agreement, out: Disclosed
) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for name, value in data.items():
        path = prefix + name
        rule = rules.get(path)
        if rule is None:
            shown[name] = None
            out.withheld.add(path)
        elif rule.protected and not agreement.grants(path):
            if rule.mask is not None:
                shown[name] = rule.mask(jsonable(value))
                out.masked.add(path)
            else:
                shown[name] = None
                out.withheld.add(path)
        else:
            if rule.protected and not _under(path, out.disclosed):
                out.disclosed.add(path)
            shown[name] = _value(value, path, rules, agreement, out)
    return shown


def _under(path: str, fields: set[str]) -> bool:
    """Whether ``path`` lies inside one of ``fields`` (a record already disclosed as a whole)."""
    return any(path.startswith(f + ".") for f in fields)


def _value(
    value: Any, path: str, rules: Mapping[str, FieldRule], agreement: Agreement, out: Disclosed
) -> Any:
    if isinstance(value, Mapping):
        return _record(value, path + ".", rules, agreement, out)
    if isinstance(value, list | tuple):
        # An array's items stand at the array's own path (the catalog names no index).
        return [_value(item, path, rules, agreement, out) for item in value]
    out.clear.add(path)
    name = path.rpartition(".")[2]
    if isinstance(value, str) and (name == RESIDENT_ID or name.endswith("_" + RESIDENT_ID)):
        out.residents.add(value)
    return jsonable(value)


def jsonable(value: Any) -> Any:
    """A decoded Avro value in its JSON form: ISO 8601 dates and times, decimals as text, bytes as base64."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
