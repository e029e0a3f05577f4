"""Sharing agreements: the file's format, the decision for a request, and reloading without a restart."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bus.errors import ConfigurationError
from gateway.agreements import (
    SHAREABLE_MODELS,
    AccessRefused,
    Agreement,
    Agreements,
    Purpose,
    decide,
    parse_agreements,
)

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agreements.sample.json"
DAY = date(2026, 12, 2)


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "welfare-residents",
        "organisation": "ministry-of-welfare",
        "model": "residents",
        "fields": ["name", "address"],
        "purposes": [{"name": "benefit-eligibility", "legal_basis": "National Basic Living Security Act"}],
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
    }
    entry.update(changes)
    return entry


def _file(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"format": "govbus-agreements/1", "agreements": list(entries)}).encode()


def _agreement(**changes: Any) -> Agreement:
    return parse_agreements(_file(_entry(**changes)))[0]


def test_the_sample_set_parses_and_names_only_shareable_models() -> None:
    """Every agreement of deploy/agreements.sample.json parses against the models that exist."""
    agreements = parse_agreements(SAMPLE.read_bytes(), SAMPLE, SHAREABLE_MODELS)
    assert len(agreements) >= 8
    assert {a.organisation for a in agreements} >= {"ministry-of-welfare", "ministry-of-education"}
    assert {"finance", "education", "localgov", "personnel"} <= {a.organisation for a in agreements}


def test_an_agreement_parses_into_its_parts() -> None:
    """Fields, purposes with their legal basis and the validity period are read as written."""
    agreement = _agreement()
    assert agreement.fields == frozenset({"name", "address"})
    assert agreement.purposes == (Purpose("benefit-eligibility", "National Basic Living Security Act"),)
    assert (agreement.valid_from, agreement.valid_until) == (date(2026, 1, 1), date(2026, 12, 31))
    assert agreement.in_force(date(2026, 12, 31))
    assert not agreement.in_force(date(2027, 1, 1))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not a JSON document"),
        (b'{"format": "govbus-agreements/1", "agreements": ["\\ud800"]}', "agreements[0]"),
        (b"[" * 1000 + b"]" * 1000, "not a JSON document"),
        (b"[" * 10 + b"]" * 10, "not an agreements file"),
        (b'{"format": "govbus-identities/1", "agreements": []}', "not an agreements file"),
        (b'{"format": "govbus-agreements/1", "agreements": {}}', "must be a list"),
        (_file(_entry(extra=1)), "unknown members: extra"),
        (_file(_entry(id="")), '"id" must be'),
        (_file(_entry(organisation="Ministry Of Welfare")), '"organisation" must be'),
        (_file(_entry(model="passports")), "model 'passports' is not one of"),
        (_file(_entry(fields="name")), '"fields" must be a list'),
        (_file(_entry(fields=["na me"])), '"fields" must be a list'),
        (_file(_entry(purposes=[])), '"purposes" must be a non-empty list'),
        (_file(_entry(purposes=[{"name": "x"}])), "a purpose is"),
        (_file(_entry(purposes=[{"name": "x", "legal_basis": " "}])), "a legal basis is"),
        (_file(_entry(purposes=[{"name": "x", "legal_basis": "l" * 513}])), "a legal basis is"),
        (
            _file(_entry(purposes=[{"name": "x", "legal_basis": "a"}, {"name": "x", "legal_basis": "b"}])),
            "unique",
        ),
        (_file(_entry(valid_from="2026-13-01")), '"valid_from" must be a date'),
        (_file(_entry(valid_from=20260101)), '"valid_from" must be a date'),
        (_file(_entry(valid_until="2025-12-31")), "is before valid_from"),
        (_file(_entry(), _entry()), "ids must be unique: welfare-residents"),
    ],
)
def test_a_broken_file_is_refused_naming_the_entry_and_the_problem(raw: bytes, reason: str) -> None:
    """Malformed JSON, wrong types, unknown models and bad dates raise ConfigurationError saying why."""
    with pytest.raises(ConfigurationError, match="agreements") as raised:
        parse_agreements(raw, "agreements.json", SHAREABLE_MODELS)
    assert reason in str(raised.value)


def test_a_request_under_an_agreement_in_force_is_granted_with_its_purpose() -> None:
    """The grant carries the agreement and the purpose with its legal basis."""
    grant = decide([_agreement()], "ministry-of-welfare", "residents", "benefit-eligibility", DAY)
    assert grant.agreement.id == "welfare-residents"
    assert grant.purpose.legal_basis == "National Basic Living Security Act"


def test_no_agreement_for_the_model_is_refused() -> None:
    """An organisation without an agreement for the model is refused, whatever its other agreements."""
    with pytest.raises(AccessRefused, match="'ministry-of-welfare' has no sharing agreement for 'vehicles'"):
        decide([_agreement()], "ministry-of-welfare", "vehicles", "benefit-eligibility", DAY)
    with pytest.raises(AccessRefused, match="no sharing agreement"):
        decide([_agreement()], "ministry-of-education", "residents", "benefit-eligibility", DAY)


def test_a_request_without_a_purpose_is_refused_listing_the_purposes_allowed() -> None:
    """A missing or empty purpose is refused; the reason names the header and the allowed purposes."""
    for purpose in (None, ""):
        with pytest.raises(AccessRefused, match=r"Purpose header.*benefit-eligibility"):
            decide([_agreement()], "ministry-of-welfare", "residents", purpose, DAY)


def test_a_purpose_the_agreement_does_not_name_is_refused_with_the_reason() -> None:
    """Another purpose is refused; the reason names it and the purposes that are allowed."""
    with pytest.raises(AccessRefused) as refused:
        decide([_agreement()], "ministry-of-welfare", "residents", "tax-audit", DAY)
    assert "'tax-audit' is not in 'ministry-of-welfare'" in str(refused.value)
    assert "allowed: benefit-eligibility" in str(refused.value)


def test_outside_the_validity_period_is_refused_naming_the_period() -> None:
    """Before the first day or after the last day of an agreement, its purpose grants nothing."""
    agreements = [_agreement()]
    for day in (date(2025, 12, 31), date(2027, 1, 1)):
        with pytest.raises(AccessRefused, match=r"in force on .*from 2026-01-01 until 2026-12-31"):
            decide(agreements, "ministry-of-welfare", "residents", "benefit-eligibility", day)


def test_of_several_agreements_the_one_in_force_that_names_the_purpose_decides() -> None:
    """With an expired and a current agreement for one model, the current one grants (with its fields)."""
    old = _entry(
        id="old", fields=["name", "address", "birth_date"], valid_until="2025-12-31", valid_from="2024-01-01"
    )
    current = _entry(id="current", fields=["address"])
    other = _entry(id="other", purposes=[{"name": "benefit-review", "legal_basis": "b"}], fields=["name"])
    agreements = parse_agreements(_file(old, current, other))
    grant = decide(agreements, "ministry-of-welfare", "residents", "benefit-eligibility", DAY)
    assert grant.agreement.id == "current"
    assert grant.agreement.fields == frozenset({"address"})
    assert (
        decide(agreements, "ministry-of-welfare", "residents", "benefit-review", DAY).agreement.id == "other"
    )


def test_a_changed_file_takes_effect_without_a_restart(tmp_path: Path) -> None:
    """A new agreement, then its withdrawal, are seen by a running Agreements on its next check."""
    path = tmp_path / "agreements.json"
    agreements = Agreements(path, reload_check_s=0)
    with pytest.raises(AccessRefused):
        agreements.decide("ministry-of-welfare", "residents", "benefit-eligibility", DAY)
    path.write_bytes(_file(_entry()))
    assert agreements.decide("ministry-of-welfare", "residents", "benefit-eligibility", DAY).agreement
    path.write_bytes(_file(_entry(organisation="ministry-of-education")))
    os.utime(path, ns=(1, 1))  # a different stamp even within the file system's time resolution
    with pytest.raises(AccessRefused, match="no sharing agreement"):
        agreements.decide("ministry-of-welfare", "residents", "benefit-eligibility", DAY)
    path.unlink()
    assert agreements.all() == []


def test_a_file_broken_while_running_keeps_the_last_good_agreements(tmp_path: Path) -> None:
    """A half-written edit neither opens nor closes access: the agreements before it stay in force."""
    path = tmp_path / "agreements.json"
    path.write_bytes(_file(_entry()))
    agreements = Agreements(path, reload_check_s=0)
    path.write_bytes(b'{"format": "govbus-agreements/1", "agreements": [')
    assert [a.id for a in agreements.all()] == ["welfare-residents"]


def test_a_file_broken_at_start_is_an_error(tmp_path: Path) -> None:
    """A gateway does not start on an agreements file it cannot read."""
    path = tmp_path / "agreements.json"
    path.write_bytes(b"{")
    with pytest.raises(ConfigurationError, match=r"agreements\.json: not a JSON document"):
        Agreements(path)
