"""Sharing agreements: which organisation may read which read model, for which purposes, under which law.

A sharing agreement is configuration, kept in the agreements file (``GOVBUS_HOME/agreements.json``)::

    {
      "format": "govbus-agreements/1",
      "agreements": [
        {"id": "welfare-residents-2026", "organisation": "ministry-of-welfare", "model": "residents",
         "fields": ["name", "address"],
         "purposes": [{"name": "benefit-eligibility",
                       "legal_basis": "National Basic Living Security Act, art. 22"}],
         "valid_from": "2026-01-01", "valid_until": "2027-12-31"}
      ]
    }

- ``model``: a read model (``residents``, ``benefits``...) or ``citizen_profile``.
- ``fields``: the fields the catalog classifies ``personal`` or ``sensitive`` that the organisation sees in
  clear. ``public`` and ``internal`` fields are shown to any organisation holding an agreement for the
  model; a personal or sensitive field not listed is masked (where the catalog defines a mask) or left out.
- ``purposes``: what the organisation may read the model for, each with the legal basis that allows it;
  every request names one (the ``Purpose`` header).
- ``valid_from`` and ``valid_until``: the first and the last day the agreement is in force (inclusive).

An organisation may hold several agreements for one model (for instance under two statutes, granting
different fields); a request is decided by the one that names its purpose and is in force that day.
:class:`Agreements` re-reads the file when it changed (looked at most once a second), so a new, changed or
withdrawn agreement takes effect on a running gateway without a restart. A sample set is
``deploy/agreements.sample.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bus.errors import ConfigurationError
from consumers.projections import READ_MODELS
from gateway.watched import RELOAD_CHECK_S, WatchedFile

FORMAT = "govbus-agreements/1"
FILE_NAME = "agreements.json"
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_LEGAL_BASIS = 512
MAX_REMEMBERED = 10_000
"""Grants :class:`Agreements` remembers at most (it starts over beyond that)."""
CITIZEN_PROFILE = "citizen_profile"
SHAREABLE_MODELS = frozenset(READ_MODELS) | {CITIZEN_PROFILE}
"""What an agreement may name: every read model, and the citizen profile joined across them."""


@dataclass(frozen=True)
class Purpose:
    """One purpose an agreement allows, and the law that allows it."""

    name: str
    legal_basis: str


@dataclass(frozen=True)
class Agreement:
    """What one organisation may read of one model, why, and when."""

    id: str
    organisation: str
    model: str
    fields: frozenset[str]
    purposes: tuple[Purpose, ...]
    valid_from: date
    valid_until: date

    def in_force(self, day: date) -> bool:
        """Whether ``day`` lies within the agreement's validity period."""
        return self.valid_from <= day <= self.valid_until

    def grants(self, path: str) -> bool:
        """Whether the agreement shows the field at dotted ``path`` in clear: it names the field or a
        record enclosing it (``address`` grants ``address.road_address``)."""
        return any(path == f or path.startswith(f + ".") for f in self.fields)

    def purpose(self, name: str) -> Purpose | None:
        """The purpose called ``name``, if the agreement names it."""
        return next((p for p in self.purposes if p.name == name), None)


@dataclass(frozen=True)
class Grant:
    """A request allowed: the agreement that allows it and the purpose it was made for."""

    agreement: Agreement
    purpose: Purpose


class AccessRefused(Exception):  # noqa: N818 - a decision, not a failure: the gateway answers 403 with it
    """A request no agreement allows; the message says why, for the caller."""


def decide(
    agreements: Iterable[Agreement], organisation: str, model: str, purpose: str | None, day: date
) -> Grant:
    """The grant for ``organisation`` reading ``model`` for ``purpose`` on ``day``; AccessRefused if none.

    The reasons name what to fix: no agreement for the model, no purpose stated, a purpose the agreements
    do not name (listing those they do), or agreements naming it that are not in force that day.
    """
    held = [a for a in agreements if a.organisation == organisation and a.model == model]
    if not held:
        raise AccessRefused(f"organisation {organisation!r} has no sharing agreement for {model!r}")
    allowed = sorted({p.name for a in held for p in a.purposes})
    if not purpose:
        raise AccessRefused(
            f"state the purpose of this request in the Purpose header; {organisation!r} may read "
            f"{model!r} for: {', '.join(allowed)}"
        )
    naming = [a for a in held if a.purpose(purpose) is not None]
    if not naming:
        raise AccessRefused(
            f"purpose {purpose[:100]!r} is not in {organisation!r}'s agreements for {model!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    for agreement in naming:
        found = agreement.purpose(purpose)
        if agreement.in_force(day) and found is not None:
            return Grant(agreement, found)
    periods = "; ".join(f"{a.id} from {a.valid_from} until {a.valid_until}" for a in naming)
    raise AccessRefused(f"no agreement for {model!r} and purpose {purpose!r} is in force on {day}: {periods}")


def parse_agreements(
    raw: bytes, origin: Path | str = "agreements", models: frozenset[str] | None = None
) -> list[Agreement]:
    """The agreements of an agreements file; ConfigurationError naming the entry and the problem.

    ``models``, when given, are the model names an agreement may name.
    """
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigurationError(f"{origin}: not a JSON document: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigurationError(f'{origin}: not an agreements file (it needs "format": "{FORMAT}")')
    entries = document.get("agreements")
    if not isinstance(entries, list):
        raise ConfigurationError(f'{origin}: "agreements" must be a list')
    agreements: list[Agreement] = []
    for index, entry in enumerate(entries):
        try:
            agreements.append(_agreement(entry, models))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{origin}: agreements[{index}]: {exc}") from exc
    ids = [a.id for a in agreements]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigurationError(f"{origin}: agreement ids must be unique: {', '.join(duplicated)}")
    return agreements


def _agreement(entry: Any, models: frozenset[str] | None) -> Agreement:
    if not isinstance(entry, dict):
        raise ConfigurationError("an agreement is a JSON object")
    known = {"id", "organisation", "model", "fields", "purposes", "valid_from", "valid_until"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigurationError(f"unknown members: {', '.join(unknown)}")
    model = _name(entry, "model")
    if models is not None and model not in models:
        raise ConfigurationError(f"model {model!r} is not one of: {', '.join(sorted(models))}")
    fields = entry.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) and FIELD.fullmatch(f) for f in fields):
        raise ConfigurationError('"fields" must be a list of field names')
    purposes = entry.get("purposes")
    if not isinstance(purposes, list) or not purposes:
        raise ConfigurationError('"purposes" must be a non-empty list')
    parsed = tuple(_purpose(p) for p in purposes)
    if len({p.name for p in parsed}) != len(parsed):
        raise ConfigurationError("purpose names must be unique within an agreement")
    valid_from, valid_until = _day(entry, "valid_from"), _day(entry, "valid_until")
    if valid_until < valid_from:
        raise ConfigurationError(f"valid_until ({valid_until}) is before valid_from ({valid_from})")
    return Agreement(
        id=_name(entry, "id"),
        organisation=_name(entry, "organisation"),
        model=model,
        fields=frozenset(fields),
        purposes=parsed,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _purpose(entry: Any) -> Purpose:
    if not isinstance(entry, dict) or set(entry) != {"name", "legal_basis"}:
        raise ConfigurationError('a purpose is {"name": ..., "legal_basis": ...}')
    basis = entry["legal_basis"]
    if not isinstance(basis, str) or not basis.strip() or len(basis) > MAX_LEGAL_BASIS:
        raise ConfigurationError(f"a legal basis is a non-empty text of at most {MAX_LEGAL_BASIS} characters")
    return Purpose(_name(entry, "name"), basis.strip())


def _name(entry: dict[str, Any], member: str) -> str:
    value = entry.get(member)
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ConfigurationError(
            f'"{member}" must be lowercase letters, digits, ".", "_" or "-" (at most 63), got {value!r:.80}'
        )
    return value


def _day(entry: dict[str, Any], member: str) -> date:
    value = entry.get(member)
    try:
        if not isinstance(value, str):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigurationError(f'"{member}" must be a date like 2026-01-01, got {value!r:.80}') from exc


class Agreements:
    """The agreements in force from the agreements file (re-read when it changes; none when absent)."""

    def __init__(
        self, path: Path, models: frozenset[str] = SHAREABLE_MODELS, reload_check_s: float = RELOAD_CHECK_S
    ) -> None:
        none: list[Agreement] = []
        self._version: list[Agreement] | None = None
        self._granted: dict[tuple[str, str, str | None, date], Grant] = {}
        self._file = WatchedFile(
            path, lambda raw, origin: parse_agreements(raw, origin, models), none, reload_check_s
        )

    @property
    def path(self) -> Path:
        """The agreements file."""
        return self._file.path

    def all(self) -> list[Agreement]:
        """Every agreement of the file as it is now."""
        return list(self._file.current())

    def decide(self, organisation: str, model: str, purpose: str | None, day: date) -> Grant:
        """:func:`decide` over the agreements as they are now.

        Grants are remembered per question for the life of one version of the file (a read asks the same
        question thousands of times a second); refusals are decided afresh, with their reasons.
        """
        current = self._file.current()
        if current is not self._version:
            self._version, self._granted = current, {}
        question = (organisation, model, purpose, day)
        grant = self._granted.get(question)
        if grant is None:
            grant = decide(current, organisation, model, purpose, day)
            if len(self._granted) >= MAX_REMEMBERED:
                self._granted = {}
            self._granted[question] = grant
        return grant
