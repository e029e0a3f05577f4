"""Avro schema resolution: can data written with one schema be read with another, and if not, why?

The rules follow the "Schema Resolution" section of the Avro specification (1.11/1.12) and the
checkers of apache/avro (Java ``SchemaCompatibility``, Python ``avro.compatibility``):

* primitives resolve when equal or when the writer's type promotes to the reader's:
  int to long, float or double; long to float or double; float to double; string to and from bytes;
* records, enums and fixed types resolve when their unqualified names are equal (namespaces may
  differ) or the reader lists the writer's name among its aliases;
* every reader field must be found in the writer, by its name or one of its aliases, or have a
  default; writer fields the reader lacks are skipped; matched fields resolve recursively;
* an enum reader must know every writer symbol, unless it declares a ``default`` symbol;
* fixed sizes must be equal; arrays and maps resolve their items and values;
* a writer union resolves only if each of its branches does, whatever the reader is; a non-union
  writer read by a union resolves against the first reader branch that matches it (the exact type
  first, then promotions and aliases), or against any later match that resolves cleanly;
* logical types are ignored, except that two valid ``decimal`` types must agree on precision and
  scale, as the specification requires.

Every incompatibility is reported, not just the first, located in the reader schema by a path of
field names (``/address/postal_code``; ``[]`` stands for array items and ``{}`` for map values).
Recursive types terminate: a (reader, writer) record pair met again while it is still being
resolved is taken as compatible, since any problem inside it is reported by the outer visit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from schemas.avro_types import short_name
from schemas.registry.avro_names import (
    Array,
    Enum,
    Fixed,
    Map,
    Named,
    Node,
    Primitive,
    Record,
    Union,
    describe,
    parse_schema,
)

READER_FIELD_MISSING_DEFAULT_VALUE = "READER_FIELD_MISSING_DEFAULT_VALUE"
TYPE_MISMATCH = "TYPE_MISMATCH"
NAME_MISMATCH = "NAME_MISMATCH"
FIXED_SIZE_MISMATCH = "FIXED_SIZE_MISMATCH"
MISSING_ENUM_SYMBOLS = "MISSING_ENUM_SYMBOLS"
MISSING_UNION_BRANCH = "MISSING_UNION_BRANCH"

# Writer type -> the reader types its values may be read as, besides itself.
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
# Path segment -> (element, collection); neither can be an Avro field name, so paths stay unambiguous.
_CONTAINERS = {"[]": ("item", "array"), "{}": ("value", "map")}


@dataclass(frozen=True)
class Incompatibility:
    """One reason why data written with the writer schema cannot be read with the reader schema."""

    kind: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.path}: {self.message}"


def check_resolution(reader: Any, writer: Any) -> list[Incompatibility]:
    """Why data written with `writer` cannot be read with `reader` (empty list: it can).

    Both are JSON-decoded Avro schemas (str / dict / list), as json.loads returns them. A schema
    that is not valid Avro raises :class:`schemas.registry.avro_names.SchemaParseError` (a ``ValueError``).
    """
    findings = _Resolver().resolve(parse_schema(reader), parse_schema(writer))
    # A type reached along two routes (e.g. two writer union branches) would repeat its findings.
    unique: dict[Incompatibility, None] = {}
    for finding in findings:
        message = f"{_subject(finding.segments)} {finding.reason}"
        unique.setdefault(Incompatibility(finding.kind, _pointer(finding.segments), message))
    return list(unique)


def can_read(reader: Any, writer: Any) -> bool:
    """Whether every datum written with `writer` can be read with `reader`."""
    return not check_resolution(reader, writer)


@dataclass(frozen=True)
class _Finding:
    """An incompatibility located relative to the node being resolved, so cached results can move."""

    kind: str
    segments: tuple[str, ...]
    reason: str  # completes a sentence whose subject is the value at ``segments``

    def under(self, segment: str) -> _Finding:
        return replace(self, segments=(segment, *self.segments))


class _Resolver:
    """One check; remembers record pairs so recursive and shared types are resolved once."""

    def __init__(self) -> None:
        # None marks a pair still being resolved: meeting it again means the schema recursed.
        self._records: dict[tuple[int, int], list[_Finding] | None] = {}

    def resolve(self, reader: Node, writer: Node) -> list[_Finding]:
        if isinstance(writer, Union):
            findings: list[_Finding] = []
            for branch in writer.branches:
                findings += self._branch(reader, branch, writer)
            return findings
        return self._branch(reader, writer, None)

    def _branch(self, reader: Node, writer: Node, via: Union | None) -> list[_Finding]:
        """Resolve a non-union writer type; ``via`` is the writer union it came from, for messages."""
        if isinstance(reader, Union):
            return self._into_union(reader, writer, via)
        return self._single(reader, writer, via)

    def _into_union(self, reader: Union, writer: Node, via: Union | None) -> list[_Finding]:
        exact = [b for b in reader.branches if _same_type(b, writer)]
        candidates = exact + [b for b in reader.branches if b not in exact and _matches(b, writer)]
        if not candidates:
            reason = (
                f"is {describe(reader)} in the reader, which has no branch that can read "
                f"{_written(writer, via)}"
            )
            return [_Finding(MISSING_UNION_BRANCH, (), reason)]
        first: list[_Finding] | None = None
        for candidate in candidates:
            findings = self._single(candidate, writer, via)
            if not findings:
                return []
            if first is None:
                first = findings
        # The first match is the branch the specification selects, so its problems are the real ones.
        return first or []

    # One return per pair of like types reads clearer than a dispatch table.
    def _single(self, reader: Node, writer: Node, via: Union | None) -> list[_Finding]:  # noqa: PLR0911
        if isinstance(reader, Primitive) and isinstance(writer, Primitive):
            return _primitive(reader, writer, via)
        if isinstance(reader, Record) and isinstance(writer, Record):
            return self._record(reader, writer)
        if isinstance(reader, Enum) and isinstance(writer, Enum):
            return _name_check(reader, writer, "enum") + _enum_symbols(reader, writer)
        if isinstance(reader, Fixed) and isinstance(writer, Fixed):
            return _name_check(reader, writer, "fixed") + _fixed(reader, writer)
        if isinstance(reader, Array) and isinstance(writer, Array):
            return [f.under("[]") for f in self.resolve(reader.items, writer.items)]
        if isinstance(reader, Map) and isinstance(writer, Map):
            return [f.under("{}") for f in self.resolve(reader.values, writer.values)]
        return [_mismatch(reader, writer, via)]

    def _record(self, reader: Record, writer: Record) -> list[_Finding]:
        key = (id(reader), id(writer))
        if key in self._records:
            return self._records[key] or []
        self._records[key] = None
        findings = _name_check(reader, writer, "record")
        by_name = {f.name: f for f in writer.fields}
        for field in reader.fields:
            match = by_name.get(field.name) or next((by_name[a] for a in field.aliases if a in by_name), None)
            if match is not None:
                findings += [f.under(field.name) for f in self.resolve(field.type, match.type)]
            elif not field.has_default:
                known_as = (
                    f" (the writer has no field under its name or its aliases {_quoted(field.aliases)})"
                    if field.aliases
                    else ""
                )
                reason = (
                    f"({describe(field.type)}) is new in the reader{known_as} and has no default, "
                    "so data written without it cannot be read"
                )
                findings.append(_Finding(READER_FIELD_MISSING_DEFAULT_VALUE, (field.name,), reason))
        self._records[key] = findings
        return findings


def _primitive(reader: Primitive, writer: Primitive, via: Union | None) -> list[_Finding]:
    if reader.kind != writer.kind and reader.kind not in _PROMOTIONS.get(writer.kind, frozenset()):
        return [_mismatch(reader, writer, via)]
    return _decimal_check(reader.decimal, writer.decimal, reader, writer)


def _enum_symbols(reader: Enum, writer: Enum) -> list[_Finding]:
    missing = [s for s in writer.symbols if s not in reader.symbols]
    if not missing or reader.default in reader.symbols:
        return []
    noun, them = ("symbol", "it") if len(missing) == 1 else ("symbols", "them")
    if reader.default is None:
        fallback = f"and declares no default symbol to read {them} as"
    else:
        # An enum default outside its own symbols cannot stand in for anything.
        fallback = f"and whose default '{reader.default}' is not one of its own symbols"
    reason = (
        f"is enum '{reader.fullname}' in the reader, which lacks the writer's {noun} "
        f"{_quoted(missing)} {fallback}"
    )
    return [_Finding(MISSING_ENUM_SYMBOLS, (), reason)]


def _fixed(reader: Fixed, writer: Fixed) -> list[_Finding]:
    if reader.size != writer.size:
        reason = (
            f"is fixed '{reader.fullname}' of {reader.size} bytes in the reader but {writer.size} bytes "
            "in the writer; fixed sizes must be equal"
        )
        return [_Finding(FIXED_SIZE_MISMATCH, (), reason)]
    return _decimal_check(reader.decimal, writer.decimal, reader, writer)


def _decimal_check(
    reader_decimal: tuple[int, int] | None, writer_decimal: tuple[int, int] | None, reader: Node, writer: Node
) -> list[_Finding]:
    # Only a decimal on both sides constrains anything: otherwise the underlying types decide.
    if reader_decimal is None or writer_decimal is None or reader_decimal == writer_decimal:
        return []
    reason = (
        f"is {describe(reader)} in the reader but {describe(writer)} in the writer; "
        "decimals resolve only when precision and scale are equal"
    )
    return [_Finding(TYPE_MISMATCH, (), reason)]


def _name_check(reader: Named, writer: Named, kind: str) -> list[_Finding]:
    if _names_match(reader, writer):
        return []
    reason = (
        f"is {kind} '{reader.fullname}' in the reader but {kind} '{writer.fullname}' in the writer; "
        "named types resolve only when their unqualified names match or the reader lists the "
        "writer's name among its aliases"
    )
    return [_Finding(NAME_MISMATCH, (), reason)]


def _names_match(reader: Named, writer: Named) -> bool:
    if reader.name == writer.name or writer.fullname in reader.aliases:
        return True
    # Namespaces are not compared for names, so an alias written without the writer's namespace counts too.
    return writer.name in {short_name(a) for a in reader.aliases}


def _same_type(reader: Node, writer: Node) -> bool:
    """The exact counterpart of the writer type in a reader union, preferred over promotions."""
    if isinstance(reader, Primitive) and isinstance(writer, Primitive):
        return reader.kind == writer.kind
    if isinstance(reader, (Record, Enum, Fixed)) and isinstance(writer, (Record, Enum, Fixed)):
        return type(reader) is type(writer) and reader.fullname == writer.fullname
    return isinstance(reader, (Array, Map)) and type(reader) is type(writer)


def _matches(reader: Node, writer: Node) -> bool:  # noqa: PLR0911 - one case per type
    """The specification's shallow "match", which picks a reader union branch before deep resolution."""
    if isinstance(reader, Union) or isinstance(writer, Union):
        return True
    if isinstance(reader, Primitive) and isinstance(writer, Primitive):
        return reader.kind == writer.kind or reader.kind in _PROMOTIONS.get(writer.kind, frozenset())
    if isinstance(reader, Fixed) and isinstance(writer, Fixed):
        return reader.size == writer.size and _names_match(reader, writer)
    if isinstance(reader, (Record, Enum)) and isinstance(writer, (Record, Enum)):
        return type(reader) is type(writer) and _names_match(reader, writer)
    if isinstance(reader, Array) and isinstance(writer, Array):
        return _matches(reader.items, writer.items)
    if isinstance(reader, Map) and isinstance(writer, Map):
        return _matches(reader.values, writer.values)
    return False


def _mismatch(reader: Node, writer: Node, via: Union | None) -> _Finding:
    written = describe(writer)
    origin = f"{written} (a branch of the writer's {describe(via)})" if via is not None else written
    read_as = describe(reader)
    reason = f"is {read_as} in the reader but {origin} in the writer; {written} cannot be read as {read_as}"
    return _Finding(TYPE_MISMATCH, (), reason)


def _written(writer: Node, via: Union | None) -> str:
    if via is None:
        return f"the writer's {describe(writer)}"
    return f"the writer's {describe(writer)} (a branch of its {describe(via)})"


def _quoted(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _subject(segments: tuple[str, ...]) -> str:
    """Who the message is about: the innermost field, and which part of it if inside a collection."""
    end = len(segments)
    while end and segments[end - 1] in _CONTAINERS:
        end -= 1
    trailing = segments[end:]
    owner = f"field '{segments[end - 1]}'" if end else None
    if not trailing:
        return owner or "the top-level value"
    element = _CONTAINERS[trailing[-1]][0]
    element = ("an " if element == "item" else "a ") + element
    where = owner or f"the top-level {_CONTAINERS[trailing[0]][1]}"
    return f"{element} {'of' if len(trailing) == 1 else 'nested in'} {where}"


def _pointer(segments: tuple[str, ...]) -> str:
    # JSON-pointer escaping keeps the path unambiguous even for odd names.
    return "/" + "/".join(s.replace("~", "~0").replace("/", "~1") for s in segments)
