"""Disclosure: every read-model column's contract comes from the catalog, and agreements decide what shows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from bus.errors import ConfigurationError
from consumers.projections import READ_MODELS
from consumers.readmodel import PROVENANCE, Derived, Table
from gateway.agreements import Agreement, Purpose
from gateway.disclosure import Disclosures, Plan, _column, contracts
from schemas.catalog import CLASSIFICATIONS, load_catalog

CATALOG = load_catalog()


def agreement(*fields: str, model: str = "residents") -> Agreement:
    """An agreement of the welfare ministry granting ``fields``."""
    return Agreement(
        "a1",
        "ministry-of-welfare",
        model,
        frozenset(fields),
        (Purpose("p", "law"),),
        date(2026, 1, 1),
        date(2027, 1, 1),
    )


def resident(**changes: Any) -> dict[str, Any]:
    """A residents row."""
    row = {
        "resident_id": "R000000000001",
        "registration_number": "9001011234567",
        "name": "홍길동",
        "birth_date": "1990-01-01",
        "sex": "MALE",
        "nationality": "KR",
        "status": "ACTIVE",
        "sido": "서울특별시",
        "sigungu": "종로구",
        "road_address": "세종대로 209",
        "detail": "3층",
        "postal_code": "03154",
        "admin_code": "1111010100",
        "registered_on": "2020-01-01",
        "moved_on": None,
        "died_on": None,
        **{name: 0 if kind == "int" else "x" for name, kind in PROVENANCE},
    }
    return {**row, **changes}


def test_every_column_of_every_read_model_has_a_classified_documented_contract() -> None:
    """Each table of each read model gets a classification and a doc for every column, provenance included."""
    found = contracts(CATALOG)
    tables = {t.name for factory in READ_MODELS.values() for t in factory().tables}
    assert set(found) == tables
    for contract in found.values():
        assert [c.name for c in contract.columns] == list(contract.table.all_columns)
        for column in contract.columns:
            assert column.classification in CLASSIFICATIONS
            assert column.doc


def test_the_registration_number_is_sensitive_and_masked_by_the_catalogs_mask() -> None:
    """residents.registration_number takes its classification and mask from ResidentRegistered."""
    column = contracts(CATALOG)["residents"].column("registration_number")
    assert (column.classification, column.mask) == ("sensitive", "registration-number")


def test_an_unclassified_column_is_refused() -> None:
    """A column no catalog field names and no Derived entry describes fails contract building."""
    table = Table(
        "t",
        {"k": "text", "mystery": "int"},
        key=("k",),
        derived={"k": Derived("key", classification="public")},
    )
    with pytest.raises(ConfigurationError, match="mystery"):
        _column(table, "mystery", "int", {})


def test_without_a_grant_protected_fields_are_masked_or_withheld() -> None:
    """Ungranted: the number keeps birth date and sex digit, the name its initial, unmasked fields go null."""
    plan = Disclosures(CATALOG).plan("residents", agreement())
    shown = plan.apply(resident())
    assert shown["registration_number"] == "900101-1******"
    assert shown["name"] == "홍**"
    assert shown["birth_date"] == "1990"
    assert shown["sex"] is None
    assert shown["address"]["road_address"] is None
    assert shown["address"]["sido"] == "서울특별시"
    assert shown["status"] == "ACTIVE"
    assert "registration_number" in plan.masked
    assert "sex" in plan.withheld
    assert plan.disclosed == ()


def test_a_grant_of_a_record_shows_its_nested_fields_in_clear() -> None:
    """Granting name and address shows them, and only them, in clear; the audit lists them as disclosed."""
    plan = Disclosures(CATALOG).plan("residents", agreement("name", "address"))
    shown = plan.apply(resident())
    assert shown["name"] == "홍길동"
    assert shown["address"]["road_address"] == "세종대로 209"
    assert shown["address"]["detail"] == "3층"
    assert shown["registration_number"] == "900101-1******"
    assert set(plan.disclosed) == {"name", "road_address", "detail"}
    assert plan.visible("name")
    assert not plan.visible("registration_number")


def test_a_derived_column_takes_the_classification_of_its_source() -> None:
    """benefits.total_paid comes from BenefitPaid.amount (personal): withheld unless amount is granted."""
    disclosures = Disclosures(CATALOG)
    row = dict.fromkeys(disclosures.contracts["benefits"].table.all_columns) | {
        "total_paid": Decimal("1250000")
    }
    assert disclosures.plan("benefits", agreement(model="benefits")).apply(row)["total_paid"] is None
    shown = disclosures.plan("benefits", agreement("amount", model="benefits")).apply(row)
    assert shown["total_paid"] == "1250000"


def test_plans_are_built_once_per_agreement_version() -> None:
    """The same agreement reuses its plan; the same id with other fields gets a new one."""
    disclosures = Disclosures(CATALOG)
    first = disclosures.plan("residents", agreement("name"))
    assert disclosures.plan("residents", agreement("name")) is first
    assert disclosures.plan("residents", agreement("name", "sex")) is not first
    assert isinstance(first, Plan)
