"""Generate the typed event models from the catalog: ``python -m producers.events.codegen [--check]``.

The ``.avsc`` files stay the one source of truth. This module renders one Python module per Avro
namespace below ``govbus`` (one per agency, plus ``common`` for the shared ``govbus.common`` records)
into ``producers/events/``; the rendered modules are committed, and ``tests/unit/test_event_models.py``
fails when they drift from the catalog. The output is already in ``ruff format`` style, so formatting
the package never makes it drift.

Mapping: string→``str``, int/long→``int``, boolean→``bool``, float/double→``float``, bytes→``bytes``,
date→``date``, timestamp-millis→:data:`~producers.events.base.TimestampMillis`, decimal→``Decimal``
checked by :class:`~producers.events.base.AvroDecimal`, enum→``StrEnum``, record→a model,
``["null", T]``→``T | None`` (default None unless the schema names another default). Anything else
(arrays, maps, fixed, wider unions, other logical types) raises :class:`~bus.errors.SchemaError`
naming the file and field, so the generator is extended on purpose rather than guessing.
"""

from __future__ import annotations

import argparse
import keyword
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus.errors import SchemaError
from producers.events.base import AvroEvent
from producers.events.layout import (
    INDENT,
    docstring_lines,
    field_lines,
    from_import,
    string_literal,
    tuple_assignment,
)
from schemas.avro_types import PRIMITIVES, full_name, namespace_of, qualify, short_name, walk
from schemas.catalog import Catalog, EventType, load_catalog

PACKAGE_DIR = Path(__file__).resolve().parent
HEADER = (
    "# Generated from the schemas/avsc catalog by producers/events/codegen.py; do not edit by hand.\n"
    "# Regenerate with: python -m producers.events.codegen\n"
)
ROOT_NAMESPACE = "govbus"

# The Python type of each primitive the generator supports (not ``null``, which only unions use).
_PYTHON_TYPES = {
    "string": "str",
    "int": "int",
    "long": "int",
    "boolean": "bool",
    "float": "float",
    "double": "float",
    "bytes": "bytes",
}
# Names a generated module binds at top level; a field with one of these names would shadow it.
_STDLIB_IMPORTS = {
    "date": "datetime",
    "Decimal": "decimal",
    "StrEnum": "enum",
    "Annotated": "typing",
    "ClassVar": "typing",
}
_RENDERED = ("record", "enum")
_BASE_IMPORTS = ("AvroDecimal", "AvroEvent", "AvroRecord", "TimestampMillis")
_HAND_WRITTEN = ("__init__", "base", "codegen", "layout")


@dataclass(frozen=True)
class _NamedType:
    """A record or enum to render, with the file it was first defined in."""

    full_name: str
    schema: Mapping[str, Any]
    origin: Path
    event: EventType | None

    @property
    def name(self) -> str:
        return short_name(self.full_name)

    @property
    def namespace(self) -> str:
        return namespace_of(self.full_name)

    @property
    def module(self) -> str:
        return _module_of(self.full_name, self.origin)


def render_modules(catalog: Catalog) -> dict[str, str]:
    """File name (e.g. ``localgov.py``) → Python source, for every module the catalog needs."""
    types = _collect(catalog)
    modules: dict[str, list[_NamedType]] = {}
    for named in types.values():
        modules.setdefault(named.module, []).append(named)
    return {
        f"{module}.py": _Module(module, members, types).render()
        for module, members in sorted(modules.items())
    }


def generated_files(directory: Path = PACKAGE_DIR) -> dict[str, str]:
    """File name → text of every module in ``directory`` that carries the generated header."""
    return {
        path.name: text
        for path in sorted(directory.glob("*.py"))
        if (text := path.read_text(encoding="utf-8")).startswith(HEADER)
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated modules (or, with ``--check``, report drift); exit status 1 on drift."""
    parser = argparse.ArgumentParser(
        prog="python -m producers.events.codegen",
        description="Generate the typed event models from the catalog.",
    )
    parser.add_argument(
        "--check", action="store_true", help="report drift instead of writing; exit 1 on drift"
    )
    parser.add_argument("--catalog", type=Path, default=None, help="catalog folder (default: built in)")
    parser.add_argument(
        "--out", type=Path, default=PACKAGE_DIR, help="output folder (default: producers/events)"
    )
    args = parser.parse_args(argv)
    catalog = load_catalog(args.catalog) if args.catalog else load_catalog()
    wanted = render_modules(catalog)
    existing = generated_files(args.out)
    changed = sorted(name for name, text in wanted.items() if existing.get(name) != text)
    stale = sorted(set(existing) - set(wanted))
    if args.check:
        for name in [*changed, *stale]:
            print(f"out of date: {args.out / name}")
        if changed or stale:
            print("run `python -m producers.events.codegen` to regenerate the event models")
            return 1
        print(f"{len(wanted)} generated modules match the catalog ({len(catalog)} event types)")
        return 0
    for name in changed:
        (args.out / name).write_text(wanted[name], encoding="utf-8")
        print(f"wrote {args.out / name}")
    for name in stale:
        (args.out / name).unlink()
        print(f"removed {args.out / name} (no catalog namespace needs it)")
    print(f"{len(wanted)} modules, {len(changed)} written, {len(stale)} removed")
    return 0


def _collect(catalog: Catalog) -> dict[str, _NamedType]:
    """Every named type of the catalog by full name, dependencies before the types that use them."""
    types: dict[str, _NamedType] = {}
    for event in catalog:
        for node in walk(event.schema, children_first=True):
            name = node.full_name
            if name is None or node.kind not in _RENDERED:
                continue
            known = types.get(name)
            if known is None:
                top = event if node.location == () else None
                types[name] = _NamedType(name, node.schema, event.path, top)
            elif _definition(known.schema) != _definition(node.schema):
                raise SchemaError(f"{event.path}: {name} differs from its definition in {known.origin}")
    return types


def _definition(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "namespace"}


def _module_of(name: str, origin: Path) -> str:
    prefix, _, module = namespace_of(name).partition(".")
    if (
        prefix != ROOT_NAMESPACE
        or not module.isidentifier()
        or keyword.iskeyword(module)
        or module in _HAND_WRITTEN
    ):
        raise SchemaError(
            f"{origin}: {name} is not in a namespace 'govbus.<module>', which names its Python module"
        )
    return module


class _Module:
    """One generated module: its named types, the imports they need and the source text."""

    def __init__(self, module: str, members: list[_NamedType], types: Mapping[str, _NamedType]) -> None:
        self.module = module
        self.members = members
        self.types = types
        self.imports: dict[str, set[str]] = {}
        self.reserved = {*_STDLIB_IMPORTS, *_BASE_IMPORTS, "Field", "AwareDatetime", "EVENTS"}
        self.reserved.update(member.name for member in members)

    def render(self) -> str:
        body = [self._render_type(member) for member in self.members]
        events = [member.name for member in self.members if member.event is not None]
        if events:
            self._need("producers.events.base", "AvroEvent")
            body.append(tuple_assignment("EVENTS: tuple[type[AvroEvent], ...]", events))
        head = f"{HEADER}{self._docstring()}\n\n" + "\n".join(self._import_lines())
        return "\n\n\n".join([head, *body]) + "\n"

    def _docstring(self) -> str:
        if self.members and all(member.event is None for member in self.members):
            text = (
                f"Record types shared by several agencies' events (namespace {ROOT_NAMESPACE}.{self.module})."
            )
        else:
            text = f"Typed events of the {self.module} agency: one model per record of its catalog topics."
        return "\n".join(docstring_lines(text, ""))

    def _import_lines(self) -> list[str]:
        stdlib = sorted(m for m in self.imports if m in _STDLIB_IMPORTS.values())
        third = sorted(m for m in self.imports if m == "pydantic")
        first = sorted(m for m in self.imports if m not in stdlib and m not in third)
        lines: list[str] = []
        for group in (stdlib, third, first):
            if group and lines:
                lines.append("")
            lines.extend(from_import(module, self.imports[module]) for module in group)
        return lines

    def _need(self, module: str, name: str) -> None:
        self.imports.setdefault(module, set()).add(name)

    def _render_type(self, named: _NamedType) -> str:
        if named.schema["type"] == "enum":
            return self._render_enum(named)
        return self._render_record(named)

    def _render_enum(self, named: _NamedType) -> str:
        self._need("enum", "StrEnum")
        lines = [f"class {named.name}(StrEnum):", *docstring_lines(str(named.schema["doc"]), INDENT), ""]
        for symbol in named.schema["symbols"]:
            if not symbol.isidentifier() or keyword.iskeyword(symbol):
                raise SchemaError(
                    f"{named.origin}: enum symbol {symbol!r} of {named.full_name} is not a Python name"
                )
            lines.append(f'{INDENT}{symbol} = "{symbol}"')
        return "\n".join(lines)

    def _render_record(self, named: _NamedType) -> str:
        base = "AvroEvent" if named.event is not None else "AvroRecord"
        self._need("producers.events.base", base)
        self._need("typing", "ClassVar")
        lines = [f"class {named.name}({base}):", *docstring_lines(str(named.schema["doc"]), INDENT), ""]
        lines.append(f'{INDENT}avro_full_name: ClassVar[str] = "{named.full_name}"')
        if named.event is not None:
            lines.append(f'{INDENT}avro_topic: ClassVar[str] = "{named.event.topic}"')
            lines.append(f'{INDENT}avro_key_field: ClassVar[str] = "{named.event.key_field}"')
        lines.append("")
        for fld in named.schema["fields"]:
            lines.extend(self._render_field(named, fld))
        return "\n".join(lines)

    def _render_field(self, owner: _NamedType, fld: Mapping[str, Any]) -> list[str]:
        name = str(fld["name"])
        where = f"{owner.origin}: field {name!r} of {owner.full_name}"
        if (
            not name.isidentifier()
            or keyword.iskeyword(name)
            or name.startswith("_")
            or hasattr(AvroEvent, name)
            or name in self.reserved
        ):
            raise SchemaError(
                f"{where}: the name clashes with Python or the generated module; rename the field"
            )
        annotation, default = self._annotation(fld["type"], owner.namespace, where, fld)
        self._need("pydantic", "Field")
        arguments = [] if default is None else [f"default={default}"]
        return field_lines(name, annotation, arguments, str(fld["doc"]))

    def _annotation(
        self, schema: Any, namespace: str, where: str, fld: Mapping[str, Any]
    ) -> tuple[str, str | None]:
        """The annotation for a field's type and the default expression (None when the field is required)."""
        if isinstance(schema, list):
            others = [branch for branch in schema if branch != "null"]
            if len(schema) != 2 or len(others) != 1:
                raise SchemaError(f"{where}: only ['null', T] unions are supported, not {schema!r}")
            inner, _ = self._annotation(others[0], namespace, where, {})
            default = "None"
            if "default" in fld and fld["default"] is not None:
                default = self._default(others[0], fld["default"], namespace, where)
            return f"{inner} | None", default
        annotation = self._type(schema, namespace, where)
        if "default" in fld:
            return annotation, self._default(schema, fld["default"], namespace, where)
        return annotation, None

    def _type(self, schema: Any, namespace: str, where: str) -> str:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return self._primitive(schema, where)
            return self._named(qualify(schema, namespace), where)
        if not isinstance(schema, Mapping):
            raise SchemaError(f"{where}: unsupported type {schema!r}")
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical is not None:
            return self._logical(schema, where)
        if kind in _RENDERED:
            return self._named(full_name(schema, namespace), where)
        if isinstance(kind, str) and kind in PRIMITIVES:
            return self._primitive(kind, where)
        raise SchemaError(f"{where}: Avro type {kind!r} is not supported by the event model generator yet")

    def _primitive(self, kind: str, where: str) -> str:
        if kind not in _PYTHON_TYPES:
            raise SchemaError(
                f"{where}: Avro type {kind!r} is not supported by the event model generator yet"
            )
        return _PYTHON_TYPES[kind]

    def _logical(self, schema: Mapping[str, Any], where: str) -> str:
        kind, logical = schema.get("type"), schema.get("logicalType")
        if (kind, logical) == ("int", "date"):
            self._need("datetime", "date")
            return "date"
        if (kind, logical) == ("long", "timestamp-millis"):
            self._need("producers.events.base", "TimestampMillis")
            return "TimestampMillis"
        if (kind, logical) == ("bytes", "decimal"):
            self._need("decimal", "Decimal")
            self._need("typing", "Annotated")
            self._need("producers.events.base", "AvroDecimal")
            return (
                f"Annotated[Decimal, AvroDecimal({int(schema['precision'])}, {int(schema.get('scale', 0))})]"
            )
        raise SchemaError(
            f"{where}: logical type {logical!r} on {kind!r} is not supported by the generator yet"
        )

    def _named(self, full_name: str, where: str) -> str:
        named = self.types.get(full_name)
        if named is None:
            raise SchemaError(f"{where}: unknown named type {full_name!r}")
        if named.module != self.module:
            self._need(f"producers.events.{named.module}", named.name)
            if named.name in {member.name for member in self.members}:
                raise SchemaError(f"{where}: {full_name} has the name of a type in {self.module}")
            self.reserved.add(named.name)
        return named.name

    def _default(self, schema: Any, value: Any, namespace: str, where: str) -> str:
        """The Python expression for an Avro default of a primitive or enum field."""
        kind = schema.get("type") if isinstance(schema, Mapping) and "logicalType" not in schema else schema
        if kind == "string":
            return string_literal(str(value))
        if kind in ("int", "long", "boolean", "float", "double"):
            return repr(value)
        if isinstance(kind, str) and kind not in PRIMITIVES:
            name = full_name(schema, namespace) if isinstance(schema, Mapping) else qualify(kind, namespace)
            named = self.types.get(name)
            if named is not None and named.schema["type"] == "enum":
                return f"{self._named(name, where)}.{value}"
        raise SchemaError(f"{where}: a default for this type is not supported by the generator yet")


if __name__ == "__main__":
    sys.exit(main())
