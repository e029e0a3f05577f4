"""The generated event models: in step with the catalog, and faithful to it on the wire."""

from __future__ import annotations

import io
import json
import sys
import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from bus.errors import SchemaError
from producers.events import EVENT_MODELS, AvroEvent, AvroRecord
from producers.events.codegen import generated_files, main, render_modules
from producers.events.common import Address
from producers.events.finance import BenefitProgram, BenefitSuspended, SuspensionReason
from producers.events.localgov import ResidentMoved
from schemas.catalog import EventType, load_catalog

REGENERATE = "run `python -m producers.events.codegen` and commit the result"
CATALOG = load_catalog()
EVENTS = list(CATALOG)
PRIMITIVE_SAMPLES: dict[str, Any] = {
    "string": "서울 sample",
    "int": 7,
    "long": 2**40,
    "boolean": True,
    "float": 1.5,
    "double": 2.25,
    "bytes": b"\x00\x01",
}
HOME = Address(
    sido="서울특별시",
    sigungu="종로구",
    road_address="세종대로 209",
    postal_code="03154",
    admin_code="1111011900",
)


def _sample(schema: Any, fill_optional: bool) -> Any:
    """A value for ``schema`` as fastavro reads it; optional fields filled or left None."""
    if isinstance(schema, list):
        others = [branch for branch in schema if branch != "null"]
        return _sample(others[0], fill_optional) if fill_optional else None
    if isinstance(schema, str):
        return PRIMITIVE_SAMPLES[schema]
    makers: dict[str, Callable[[], Any]] = {
        "date": lambda: date(2024, 3, 1),
        "timestamp-millis": lambda: datetime(2024, 3, 1, 9, 30, 15, 123000, tzinfo=UTC),
        "decimal": lambda: Decimal("9" * schema["precision"]).scaleb(-schema.get("scale", 0)),
        "enum": lambda: schema["symbols"][-1],
        "record": lambda: {fld["name"]: _sample(fld["type"], fill_optional) for fld in schema["fields"]},
    }
    kind = schema.get("logicalType") or schema["type"]
    return makers[kind]() if kind in makers else _sample(kind, fill_optional)


def _is_nullable(schema: Any) -> bool:
    return isinstance(schema, list) and "null" in schema


def _record_model(annotation: Any) -> type[AvroRecord] | None:
    """The nested record model an annotation names, looking through ``X | None``."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, AvroRecord):
            return candidate
    return None


def _assert_fields_match(model: type[AvroRecord], schema: dict[str, Any]) -> None:
    fields = schema["fields"]
    assert list(model.model_fields) == [fld["name"] for fld in fields], model.avro_full_name
    for fld in fields:
        info = model.model_fields[fld["name"]]
        accepts_none = typing.get_origin(info.annotation) in (typing.Union, types.UnionType) and (
            type(None) in typing.get_args(info.annotation)
        )
        where = f"{model.avro_full_name}.{fld['name']}"
        assert accepts_none == _is_nullable(fld["type"]), where
        assert info.is_required() == ("default" not in fld and not _is_nullable(fld["type"])), where
        assert info.description == fld["doc"], where
        nested_schema = next(
            (
                b
                for b in (fld["type"] if isinstance(fld["type"], list) else [fld["type"]])
                if isinstance(b, dict)
            ),
            None,
        )
        if nested_schema is not None and nested_schema.get("type") == "record":
            nested = _record_model(info.annotation)
            assert nested is not None, where
            assert nested.avro_full_name.endswith(f".{nested_schema['name']}"), where
            _assert_fields_match(nested, nested_schema)


def test_generated_modules_match_the_catalog() -> None:
    """Rendering the models from the catalog again yields exactly the committed modules."""
    rendered = render_modules(CATALOG)
    committed = generated_files()
    assert sorted(rendered) == sorted(committed), f"generated modules differ in name; {REGENERATE}"
    for name, text in rendered.items():
        assert committed[name] == text, f"producers/events/{name} has drifted from the catalog; {REGENERATE}"


def test_every_catalog_event_has_a_model_and_every_model_an_event() -> None:
    """EVENT_MODELS holds one model per catalog event type, under the record's full name, and no other."""
    assert sorted(EVENT_MODELS) == sorted(event.full_name for event in EVENTS), REGENERATE


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.name)
def test_model_fields_mirror_the_schema(event: EventType) -> None:
    """Each model has the schema's fields in order, optional exactly where the schema is nullable."""
    model = EVENT_MODELS[event.full_name]
    assert model.avro_full_name == event.full_name
    assert model.avro_topic == event.topic
    assert model.avro_key_field == event.key_field
    assert " ".join((model.__doc__ or "").split()) == event.schema["doc"]
    _assert_fields_match(model, dict(event.schema))


@pytest.mark.parametrize("fill_optional", [True, False], ids=["optional-set", "optional-none"])
@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.name)
def test_sample_event_round_trips_through_avro(event: EventType, fill_optional: bool) -> None:
    """A sample instance of each model encodes with its catalog schema and decodes to an equal instance."""
    model = EVENT_MODELS[event.full_name]
    instance = model.from_avro(_sample(dict(event.schema), fill_optional))
    payload = instance.to_avro()
    buffer = io.BytesIO()
    schemaless_writer(buffer, event.parsed, payload)
    buffer.seek(0)
    decoded = schemaless_reader(buffer, event.parsed, None)
    assert isinstance(decoded, dict)
    assert decoded == payload
    assert model.from_avro(decoded) == instance
    assert instance.key == payload[event.key_field]


def test_to_avro_gives_plain_values_fastavro_accepts() -> None:
    """Enums become plain str and nested records plain dicts; dates and amounts stay date and Decimal."""
    moved = ResidentMoved(
        resident_id="R000000000001",
        new_address=HOME,
        moved_on=date(2024, 3, 1),
        reported_on=date(2024, 3, 5),
        receiving_office="3000000",
    )
    payload = moved.to_avro()
    assert payload["new_address"] == {
        "sido": "서울특별시",
        "sigungu": "종로구",
        "road_address": "세종대로 209",
        "detail": None,
        "postal_code": "03154",
        "admin_code": "1111011900",
    }
    assert type(payload["new_address"]) is dict
    suspended = BenefitSuspended(
        benefit_id="W000000000001",
        recipient_resident_id="R000000000001",
        program=BenefitProgram.BASIC_PENSION,
        reason=SuspensionReason.RECIPIENT_DECEASED,
        suspended_from=date(2024, 4, 1),
        legal_basis="기초연금법 제16조",
        decided_on=date(2024, 3, 20),
        deciding_office="3000000",
    )
    payload = suspended.to_avro()
    assert type(payload["program"]) is str
    assert payload["reason"] == "RECIPIENT_DECEASED"
    assert type(payload["reason"]) is str
    assert payload["cause_event_id"] is None


def test_from_avro_turns_enum_strings_and_dicts_into_typed_values() -> None:
    """Reading back gives StrEnum members and nested models, not the strings and dicts fastavro returns."""
    suspended = BenefitSuspended.from_avro(_sample(dict(CATALOG.get("BenefitSuspended").schema), True))
    assert suspended.reason is SuspensionReason.VOLUNTARY_WAIVER
    moved = ResidentMoved.from_avro(_sample(dict(CATALOG.get("ResidentMoved").schema), True))
    assert isinstance(moved.new_address, Address)


def test_krw_amounts_are_checked_against_precision_and_scale() -> None:
    """A KRW amount takes at most 18 digits and no fraction, and ``1.0`` is stored as ``1``."""
    model = EVENT_MODELS["govbus.finance.BudgetAllocated"]
    data = _sample(dict(CATALOG.get("BudgetAllocated").schema), fill_optional=True)
    with pytest.raises(ValidationError, match="18 digits"):
        model.from_avro({**data, "amount": Decimal("1" * 19)})
    with pytest.raises(ValidationError, match="decimal places"):
        model.from_avro({**data, "amount": Decimal("1.5")})
    rescaled = model.from_avro({**data, "amount": Decimal("1000.0")}).to_avro()["amount"]
    assert rescaled == Decimal(1000)
    assert rescaled.as_tuple().exponent == 0
    schemaless_writer(io.BytesIO(), CATALOG.get("BudgetAllocated").parsed, {**data, "amount": rescaled})


def test_timestamps_must_be_aware_and_keep_milliseconds() -> None:
    """A timestamp-millis field refuses naive datetimes and drops sub-millisecond digits."""
    model = EVENT_MODELS["govbus.finance.ExpenditureExecuted"]
    data = _sample(dict(CATALOG.get("ExpenditureExecuted").schema), fill_optional=True)
    with pytest.raises(ValidationError, match="timezone"):
        model.from_avro({**data, "executed_at": datetime(2024, 3, 1, 9, 30)})
    exact = model.from_avro({**data, "executed_at": datetime(2024, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)})
    assert exact.to_avro()["executed_at"].microsecond == 123000


def test_models_are_frozen_and_refuse_unknown_fields() -> None:
    """Events cannot be changed after creation and reject fields their schema lacks."""
    with pytest.raises(ValidationError, match="frozen"):
        HOME.sido = "부산광역시"
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Address.from_avro({**HOME.to_avro(), "floor": 3})


def test_every_model_derives_from_avro_event() -> None:
    """Every registered model is an AvroEvent whose key field is a str field."""
    for model in EVENT_MODELS.values():
        assert issubclass(model, AvroEvent)
        assert model.model_fields[model.avro_key_field].annotation is str


def test_codegen_check_reports_drift_and_write_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--check`` exits 1 naming the stale modules until a plain run has written them."""
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert "python -m producers.events.codegen" in capsys.readouterr().out
    assert main(["--out", str(tmp_path)]) == 0
    assert {path.name for path in tmp_path.iterdir()} == set(render_modules(CATALOG))
    assert main(["--check", "--out", str(tmp_path)]) == 0


def _catalog_with(tmp_path: Path, *extra_fields: dict[str, Any]) -> Path:
    folder = tmp_path / "avsc" / "test.thing"
    folder.mkdir(parents=True)
    schema = {
        "type": "record",
        "name": "ThingHappened",
        "namespace": "govbus.test",
        "doc": "d",
        "key": "thing_id",
        "fields": [
            {"name": "thing_id", "type": "string", "doc": "id", "classification": "internal"},
            *extra_fields,
        ],
    }
    (folder / "ThingHappened.avsc").write_text(json.dumps(schema))
    return tmp_path / "avsc"


def test_codegen_refuses_types_it_cannot_map(tmp_path: Path) -> None:
    """An Avro type the generator does not support is refused with the file and field named."""
    root = _catalog_with(
        tmp_path,
        {
            "name": "tags",
            "type": {"type": "array", "items": "string"},
            "doc": "t",
            "classification": "public",
        },
    )
    with pytest.raises(SchemaError, match=r"ThingHappened\.avsc: field 'tags'"):
        render_modules(load_catalog(root))


def test_codegen_refuses_field_names_that_shadow_the_model(tmp_path: Path) -> None:
    """A field named like a model attribute (here ``model_dump``) is refused rather than silently broken."""
    root = _catalog_with(
        tmp_path, {"name": "model_dump", "type": "string", "doc": "m", "classification": "public"}
    )
    with pytest.raises(SchemaError, match="model_dump"):
        render_modules(load_catalog(root))


def test_codegen_refuses_a_named_type_defined_two_ways(tmp_path: Path) -> None:
    """Two files that define one named type differently make generation fail, naming the type."""
    root = _catalog_with(tmp_path)
    original = (root / "test.thing" / "ThingHappened.avsc").read_text()
    for record, symbols in (("ThingHappened", ["A"]), ("ThingEnded", ["A", "B"])):
        schema = json.loads(original)
        schema["name"] = record
        kind = {"type": "enum", "name": "Kind", "doc": "k", "symbols": symbols}
        schema["fields"].append({"name": "kind", "type": kind, "doc": "k", "classification": "public"})
        (root / "test.thing" / f"{record}.avsc").write_text(json.dumps(schema))
    with pytest.raises(SchemaError, match=r"govbus\.test\.Kind differs"):
        render_modules(load_catalog(root))


def test_generated_source_applies_avro_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """String and enum defaults of the schema become the model's defaults; nullable fields default to None."""
    kind = {"type": "enum", "name": "Kind", "doc": "k", "symbols": ["A", "B"]}
    root = _catalog_with(
        tmp_path,
        {"name": "label", "type": "string", "default": "x", "doc": "l", "classification": "public"},
        {"name": "kind", "type": kind, "default": "B", "doc": "k", "classification": "public"},
        {"name": "note", "type": ["null", "string"], "doc": "n", "classification": "public"},
    )
    source = render_modules(load_catalog(root))["test.py"]
    module = types.ModuleType("generated_test")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # pydantic resolves annotations there
    exec(compile(source, "test.py", "exec"), module.__dict__)
    event = module.ThingHappened(thing_id="T1")
    assert event.to_avro() == {"thing_id": "T1", "label": "x", "kind": "B", "note": None}
