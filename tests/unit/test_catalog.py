"""The catalog loader and the rules every .avsc file must follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bus.errors import InvalidSchemaError, SchemaNotFoundError
from schemas.catalog import CLASSIFICATIONS, load_catalog


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
