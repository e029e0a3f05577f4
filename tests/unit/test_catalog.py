"""The catalog loader and the rules every .avsc file must follow."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bus.errors import InvalidSchemaError, SchemaNotFoundError
from schemas.avro_types import walk
from schemas.catalog import CLASSIFICATIONS, load_catalog

EXPECTED = {
    "localgov.resident": ("resident_id", {"ResidentRegistered", "ResidentMoved", "ResidentDeceased"}),
    "localgov.family": ("resident_id", {"FamilyRelationRegistered"}),
    "localgov.vehicle": ("vehicle_id", {"VehicleRegistered", "VehicleOwnershipTransferred"}),
    "education.school": ("school_id", {"SchoolRegistered"}),
    "education.student": ("student_id", {"StudentEnrolled", "StudentTransferred", "StudentGraduated"}),
    "personnel.civil-servant": (
        "civil_servant_id",
        {"CivilServantAppointed", "CivilServantTransferred", "CivilServantPromoted", "CivilServantRetired"},
    ),
    "finance.budget": ("budget_line_id", {"BudgetAllocated", "ExpenditureExecuted"}),
    "finance.benefit": ("benefit_id", {"BenefitGranted", "BenefitPaid", "BenefitSuspended"}),
}
KRW = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 0}
ID_FORMAT = re.compile(r"'[A-Z]' followed by \d+ digits")


def test_catalog_loads_and_every_field_is_classified() -> None:
    """Every catalog field at every level carries one of the four classifications."""
    catalog = load_catalog()
    assert len(catalog) >= 2
    for event in catalog:
        classes = event.classifications()
        assert classes, event.path
        assert set(classes.values()) <= set(CLASSIFICATIONS)


def test_resident_events_share_their_topic_and_key() -> None:
    """Resident events travel on localgov.resident keyed by resident_id, under TopicRecordName subjects."""
    catalog = load_catalog()
    moved = catalog.get("govbus.localgov.ResidentMoved")
    assert moved.topic == "localgov.resident"
    assert moved.key_field == "resident_id"
    assert moved.agency == "localgov"
    assert moved.subject == "localgov.resident-govbus.localgov.ResidentMoved"
    assert catalog.get("ResidentRegistered").topic == "localgov.resident"


def test_catalog_has_every_agency_topic_and_event_type() -> None:
    """The catalog holds exactly the expected topics, each with its event types and Kafka key."""
    catalog = load_catalog()
    assert catalog.topics() == sorted(EXPECTED)
    for topic, (key, names) in EXPECTED.items():
        events = catalog.for_topic(topic)
        assert {event.name for event in events} == names, topic
        assert {event.key_field for event in events} == {key}, topic
    assert {event.agency for event in catalog} == {"localgov", "education", "personnel", "finance"}


def test_namespaces_follow_the_publishing_agency() -> None:
    """Every event record lives in the namespace ``govbus.<agency>`` of the topic it travels on."""
    for event in load_catalog():
        assert event.schema["namespace"] == f"govbus.{event.agency}", event.path


def test_named_types_shared_between_files_are_identical() -> None:
    """A named type copied into several files (such as govbus.common.Address) is defined alike in each."""
    definitions: dict[str, dict[str, Any]] = {}
    for event in load_catalog():
        for node in walk(event.schema):
            if (name := node.full_name) is not None:
                assert definitions.setdefault(name, node.schema) == node.schema, (
                    f"{name} differs in {event.path}"
                )
    assert "govbus.common.Address" in definitions


def test_every_decimal_is_a_krw_amount() -> None:
    """Money is always a KRW decimal of precision 18 and scale 0."""
    decimals = [
        node.schema
        for event in load_catalog()
        for node in walk(event.schema)
        if isinstance(node.schema, dict) and node.schema.get("logicalType") == "decimal"
    ]
    assert decimals
    assert all(node == KRW for node in decimals)


def test_every_id_field_documents_its_format() -> None:
    """Every top-level ``*_id`` field is a string whose doc states its prefix letter and digit count."""
    for event in load_catalog():
        for fld in event.schema["fields"]:
            if fld["name"].endswith("_id") and fld["name"] != "cause_event_id":
                assert fld["type"] == "string", (event.name, fld["name"])
                assert ID_FORMAT.search(fld["doc"]), (event.name, fld["name"])


def test_identifying_fields_carry_their_classification() -> None:
    """Registration numbers are sensitive, people's names and birth dates personal, office codes public."""
    expected_by_name = {"registration_number": "sensitive", "name": "personal", "birth_date": "personal"}
    seen = set()
    for event in load_catalog():
        classes = event.classifications()
        for path, classification in classes.items():
            # education.school's ``name`` is a school's name, which is public
            if path in expected_by_name and event.topic != "education.school":
                assert classification == expected_by_name[path], (event.name, path)
                seen.add(path)
            if path.endswith("_office"):
                assert classification == "public", (event.name, path)
    assert seen == set(expected_by_name)


def test_unknown_event_type_is_reported_by_name() -> None:
    """Asking for an event type the catalog lacks names it in the error."""
    with pytest.raises(SchemaNotFoundError, match="NoSuchEvent"):
        load_catalog().get("govbus.localgov.NoSuchEvent")


def _write(root: Path, topic: str, schema: dict[str, object]) -> None:
    folder = root / topic
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{schema['name']}.avsc").write_text(json.dumps(schema))


def _event(**field_overrides: object) -> dict[str, object]:
    field: dict[str, object] = {
        "name": "thing_id",
        "type": "string",
        "doc": "id",
        "classification": "internal",
    }
    field.update(field_overrides)
    return {
        "type": "record",
        "name": "ThingHappened",
        "namespace": "govbus.test",
        "doc": "d",
        "key": "thing_id",
        "fields": [field],
    }


def test_field_without_classification_is_refused(tmp_path: Path) -> None:
    """A field missing its classification makes loading fail, naming the field."""
    schema = _event()
    del schema["fields"][0]["classification"]  # type: ignore[index]
    _write(tmp_path, "test.thing", schema)
    with pytest.raises(InvalidSchemaError, match="thing_id"):
        load_catalog(tmp_path)


def test_unknown_classification_is_refused(tmp_path: Path) -> None:
    """A classification outside the four known levels is refused."""
    _write(tmp_path, "test.thing", _event(classification="secret"))
    with pytest.raises(InvalidSchemaError, match="'secret'"):
        load_catalog(tmp_path)


def test_field_without_doc_is_refused(tmp_path: Path) -> None:
    """A field without a doc makes loading fail."""
    _write(tmp_path, "test.thing", _event(doc=""))
    with pytest.raises(InvalidSchemaError, match="has no doc"):
        load_catalog(tmp_path)


def test_key_must_be_a_string_field(tmp_path: Path) -> None:
    """The key attribute must name a top-level string field."""
    _write(tmp_path, "test.thing", _event(type="long"))
    with pytest.raises(InvalidSchemaError, match="key 'thing_id'"):
        load_catalog(tmp_path)


def test_invalid_avro_is_refused(tmp_path: Path) -> None:
    """A file that is JSON but not valid Avro is refused with the file named."""
    _write(tmp_path, "test.thing", _event(type="no_such_type"))
    with pytest.raises(InvalidSchemaError, match=r"ThingHappened\.avsc"):
        load_catalog(tmp_path)


def test_events_of_one_topic_with_different_keys_are_refused(tmp_path: Path) -> None:
    """Two event types on one topic keyed by different fields make loading fail."""
    _write(tmp_path, "test.thing", _event())
    other = _event(name="other_id")
    other["name"] = "OtherHappened"
    other["key"] = "other_id"
    _write(tmp_path, "test.thing", other)
    with pytest.raises(InvalidSchemaError, match="must be keyed by"):
        load_catalog(tmp_path)


def test_named_type_without_doc_is_refused(tmp_path: Path) -> None:
    """An enum (or any named type) without a doc makes loading fail, naming the type."""
    schema = _event()
    fields = schema["fields"]
    assert isinstance(fields, list)
    schema["fields"] = [
        *fields,
        {
            "name": "kind",
            "type": {"type": "enum", "name": "Kind", "symbols": ["A"]},
            "doc": "k",
            "classification": "public",
        },
    ]
    _write(tmp_path, "test.thing", schema)
    with pytest.raises(InvalidSchemaError, match="'Kind' has no doc"):
        load_catalog(tmp_path)


def test_file_must_be_named_for_its_record(tmp_path: Path) -> None:
    """A file whose name differs from its record name is refused."""
    folder = tmp_path / "test.thing"
    folder.mkdir()
    (folder / "Misnamed.avsc").write_text(json.dumps(_event()))
    with pytest.raises(InvalidSchemaError, match="file name must be the record name"):
        load_catalog(tmp_path)
