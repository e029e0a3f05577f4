"""Event disclosure: the catalog's classifications and masks applied to a payload under an agreement."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from gateway.agreements import Agreement, Purpose
from gateway.event_disclosure import EventDisclosure, field_rules, jsonable
from schemas.catalog import load_catalog

CATALOG = load_catalog()


def agreement(*fields: str) -> Agreement:
    """An agreement for the residents model granting ``fields``."""
    return Agreement(
        "a", "ministry-of-welfare", "residents", frozenset(fields), (Purpose("p", "law"),), date.min, date.max
    )


def registered() -> dict[str, Any]:
    """A decoded ResidentRegistered payload (dates as the decoder gives them)."""
    return {
        "resident_id": "R000000000001",
        "registration_number": "900101-1234567",
        "name": "홍길동",
        "birth_date": date(1990, 1, 1),
        "sex": "MALE",
        "nationality": "KR",
        "address": {
            "sido": "서울특별시",
            "sigungu": "종로구",
            "road_address": "세종대로 209",
            "detail": None,
            "postal_code": "03154",
            "admin_code": "1111051500",
        },
        "registered_on": date(2026, 1, 2),
        "registering_office": "1111000",
    }


def test_nothing_granted_masks_what_has_a_mask_and_withholds_the_rest() -> None:
    """Without grants: masked registration number, name and birth year; sex, nationality, address withheld."""
    shown = EventDisclosure().disclose(CATALOG.get("ResidentRegistered"), registered(), agreement())
    assert shown.data["registration_number"] == "900101-1******"
    assert shown.data["name"] == "홍**"
    assert shown.data["birth_date"] == "1990"
    assert shown.data["sex"] is None
    assert shown.data["address"] is None
    assert shown.data["registered_on"] == "2026-01-02"
    assert shown.masked == {"registration_number", "name", "birth_date"}
    assert shown.withheld == {"sex", "nationality", "address"}
    assert shown.disclosed == set()


def test_a_granted_record_is_shown_whole_and_named_once() -> None:
    """Granting ``address`` shows every field inside it; the audit names ``address``, not its leaves."""
    shown = EventDisclosure().disclose(CATALOG.get("ResidentRegistered"), registered(), agreement("address"))
    assert shown.data["address"]["road_address"] == "세종대로 209"
    assert shown.data["address"]["detail"] is None
    assert shown.disclosed == {"address"}
    assert "address.road_address" in shown.clear


def test_a_personal_field_inside_a_public_record_is_still_protected() -> None:
    """A school's address is public but its road address personal: withheld unless granted."""
    school = {
        "school_id": "S1",
        "neis_code": "7010057",
        "name": "서울초등학교",
        "level": "ELEMENTARY",
        "foundation": "PUBLIC",
        "address": {
            "sido": "서울특별시",
            "sigungu": "종로구",
            "road_address": "세종대로 1",
            "detail": "본관",
            "postal_code": "03154",
            "admin_code": "1111051500",
        },
        "education_office": "B10",
        "opened_on": date(1950, 3, 1),
    }
    shown = EventDisclosure().disclose(CATALOG.get("SchoolRegistered"), school, agreement())
    assert shown.data["address"]["sido"] == "서울특별시"
    assert shown.data["address"]["road_address"] is None
    assert shown.withheld == {"address.road_address", "address.detail"}


def test_resident_ids_in_clear_are_the_subjects() -> None:
    """Fields named resident_id or ending in _resident_id are collected as the disclosure's subjects."""
    transfer = {
        "vehicle_id": "V1",
        "plate_number": "12가3456",
        "previous_owner_resident_id": "R000000000001",
        "new_owner_resident_id": "R000000000002",
        "cause": "SALE",
        "transfer_price": Decimal("1000000"),
        "base_address": None,
        "transferred_on": date(2026, 1, 1),
        "registering_office": "1111000",
    }
    shown = EventDisclosure().disclose(
        CATALOG.get("VehicleOwnershipTransferred"), transfer, agreement("transfer_price")
    )
    assert shown.residents == {"R000000000001", "R000000000002"}
    assert shown.data["transfer_price"] == "1000000"
    assert shown.data["plate_number"] is None


def test_a_field_the_catalog_does_not_describe_is_withheld() -> None:
    """An unknown field fails closed."""
    payload = {**registered(), "secret": "x"}
    shown = EventDisclosure().disclose(CATALOG.get("ResidentRegistered"), payload, agreement("name"))
    assert shown.data["secret"] is None
    assert "secret" in shown.withheld


def test_every_catalog_field_has_a_rule_and_masks_are_on_protected_fields() -> None:
    """Each event type's rules cover its classifications; a mask only stands on a protected field."""
    for kind in CATALOG:
        rules = field_rules(kind)
        assert set(rules) == set(kind.classifications())
        assert all(rule.protected for rule in rules.values() if rule.mask is not None)


def test_json_forms_of_decoded_values() -> None:
    """Dates, datetimes, decimals and bytes become text; containers are converted inside."""
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsonable({"a": [date(2026, 1, 2), moment, Decimal("1.50"), b"\x00\x01"]}) == {
        "a": ["2026-01-02", "2026-01-02T03:04:05+00:00", "1.50", "AAE="]
    }
