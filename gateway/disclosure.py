"""What a ministry sees of a read-model row: the catalog's classifications applied under an agreement.

Every column of every read-model table has a **contract** (:class:`Column`) taken from the catalog, never
written by hand per column:

- a column named like a field of its model's topics (at any nesting level: ``road_address`` is the
  ``address.road_address`` and ``new_address.road_address`` of the resident events) takes that field's
  classification, ``doc`` and mask; where several fields share the name, the most restrictive
  classification wins;
- a column the projection computes (a status, a count, a sum) is described by the table's
  :class:`~consumers.readmodel.Derived` entry: the catalog field it is taken from, or its own
  classification;
- the provenance columns are ``internal``.

A table whose column has no contract fails when the gateway starts (and in the unit tests), so a new
column cannot be served before it is classified.

**Disclosure under an agreement** (:class:`Plan`): ``public`` and ``internal`` columns are shown; a
``personal`` or ``sensitive`` column is shown in clear only when the agreement grants it (its name, a
catalog path it comes from, or a record enclosing that path: ``address`` grants ``road_address``);
otherwise it is replaced by its catalog mask (:mod:`schemas.masks`) when the catalog names one, and
withheld (``null``) when not. Each answer says which columns were masked and withheld, and the audit
records which protected columns were disclosed in clear (never their values).

Decimal columns are answered as exact decimal text (``"1250000"``), as the JSON datum convention of
the publish API; rows are shaped with the ``Address`` columns under ``address`` and the provenance under
``provenance``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bus.errors import ConfigurationError
from consumers.projections import READ_MODELS
from consumers.projections.common import ADDRESS_COLUMNS
from consumers.readmodel import PROVENANCE, Row, Table
from gateway.agreements import Agreement
from schemas.catalog import CLASSIFICATIONS, Catalog
from schemas.masks import MASKS

PROTECTED = frozenset({"personal", "sensitive"})
PROVENANCE_DOCS = {
    "source_agency": "Agency whose event last changed this row.",
    "event_id": "CloudEvents id of that event.",
    "event_topic": "Kafka topic of that event.",
    "event_partition": "Kafka partition of that event.",
    "event_offset": "Kafka offset of that event.",
    "event_time": "CloudEvents time of that event.",
}


@dataclass(frozen=True)
class Column:
    """The contract of one column: its type, classification, doc, catalog paths and mask."""

    name: str
    kind: str
    classification: str
    doc: str
    paths: tuple[str, ...]
    mask: str | None = None
    nullable: bool = False

    @property
    def protected(self) -> bool:
        """Whether only an agreement granting it shows it in clear."""
        return self.classification in PROTECTED

    @property
    def subject(self) -> bool:
        """Whether it holds a resident id: the resident whose data the row is (for the audit)."""
        return self.name == "resident_id" or self.name.endswith("_resident_id")


@dataclass(frozen=True)
class Contract:
    """The contract of one read-model table: its model, key and columns."""

    model: str
    table: Table
    columns: tuple[Column, ...]

    @property
    def name(self) -> str:
        """The table's name, as the query API spells it."""
        return self.table.name

    def column(self, name: str) -> Column:
        """The column called ``name`` (KeyError if none)."""
        return next(c for c in self.columns if c.name == name)

    @property
    def nested_address(self) -> bool:
        """Whether the row carries the catalog's Address columns (answered under ``address``)."""
        return set(ADDRESS_COLUMNS) <= {c.name for c in self.columns}


def contracts(catalog: Catalog) -> dict[str, Contract]:
    """Every read-model table's contract, by table name; ConfigurationError for an unclassified column."""
    found: dict[str, Contract] = {}
    for model_name, factory in READ_MODELS.items():
        model = factory()
        fields = _catalog_fields(catalog, model.topics)
        for table in model.tables:
            columns = tuple(_column(table, name, kind, fields) for name, kind in table.all_columns.items())
            found[table.name] = Contract(model_name, table, columns)
    return found


@dataclass(frozen=True)
class _Field:
    path: str
    classification: str
    doc: str
    mask: str | None


def _catalog_fields(catalog: Catalog, topics: Iterable[str]) -> dict[str, list[_Field]]:
    """Every field of the events on ``topics``, by leaf name and by dotted path."""
    fields: dict[str, list[_Field]] = {}
    for topic in topics:
        for event in catalog.for_topic(topic):
            docs, masks = event.docs(), event.masks()
            for path, classification in event.classifications().items():
                found = _Field(path, classification, docs[path], masks.get(path))
                for name in {path, path.rsplit(".", 1)[-1]}:
                    fields.setdefault(name, []).append(found)
    return fields


def _column(table: Table, name: str, kind: str, fields: Mapping[str, list[_Field]]) -> Column:
    nullable = name in table.nullable
    if name in PROVENANCE_DOCS:
        return Column(name, kind, "internal", PROVENANCE_DOCS[name], (name,), None, False)
    derived = table.derived.get(name)
    if derived is not None and derived.source is None:
        if derived.classification not in CLASSIFICATIONS:
            raise ConfigurationError(
                f"{table.name}.{name}: a derived column needs a source or a classification"
            )
        return Column(name, kind, str(derived.classification), derived.doc, (name,), None, nullable)
    wanted = derived.source if derived is not None else name
    matches = fields.get(str(wanted), [])
    if not matches:
        raise ConfigurationError(
            f"{table.name}.{name}: no catalog field of the model's topics is named {wanted!r}; "
            "declare the column in the table's `derived`"
        )
    strictest = max(matches, key=lambda f: CLASSIFICATIONS.index(f.classification))
    mask = next((f.mask for f in matches if f.mask and f.classification == strictest.classification), None)
    doc = derived.doc if derived is not None else matches[0].doc
    paths = tuple(dict.fromkeys([name, *(f.path for f in matches)]))
    if kind != "text":
        mask = None  # a mask answers text: a masked number would change the column's type
    return Column(name, kind, strictest.classification, doc, paths, mask, nullable)


# -- disclosure under an agreement ------------------------------------------------------------------

CLEAR, MASKED, WITHHELD = "clear", "masked", "withheld"


class Plan:
    """How one agreement discloses one table: each column shown in clear, masked or withheld."""

    def __init__(self, contract: Contract, agreement: Agreement | None) -> None:
        """``agreement`` None discloses everything in clear (the unguarded reads of the benchmark only)."""
        self.contract = contract
        self.actions: dict[str, str] = {}
        # What apply() does, per kind of step (a read answers thousands of rows a second).
        self._names = tuple(column.name for column in contract.columns)
        self._hidden: list[str] = []
        self._masks: list[tuple[str, Callable[[Any], Any]]] = []
        self._decimals: list[str] = []
        for column in contract.columns:
            if not column.protected or agreement is None or any(agreement.grants(p) for p in column.paths):
                action = CLEAR
            elif column.mask is not None:
                action = MASKED
            else:
                action = WITHHELD
            self.actions[column.name] = action
            if action == WITHHELD:
                self._hidden.append(column.name)
            elif action == MASKED and column.mask:
                self._masks.append((column.name, MASKS[column.mask]))
            elif column.kind == "decimal":
                self._decimals.append(column.name)
        self.masked = tuple(n for n, a in self.actions.items() if a == MASKED)
        self.withheld = tuple(n for n, a in self.actions.items() if a == WITHHELD)
        self.disclosed = tuple(
            c.name for c in contract.columns if c.protected and self.actions[c.name] == CLEAR
        )
        """The protected columns shown in clear: what the audit records as disclosed."""
        self.subjects = tuple(c.name for c in contract.columns if c.subject)
        self._address = contract.nested_address

    def visible(self, column: str) -> bool:
        """Whether ``column`` is shown in clear (a filter may only name such a column)."""
        return self.actions.get(column) == CLEAR

    def apply(self, row: Row) -> dict[str, Any]:
        """The row as the agreement shows it, shaped for the answer."""
        get = row.get
        shown: dict[str, Any] = {name: get(name) for name in self._names}
        for name in self._hidden:
            shown[name] = None
        for name, transform in self._masks:
            value = shown[name]
            if value is not None:
                shown[name] = transform(value)
        for name in self._decimals:
            value = shown[name]
            if isinstance(value, Decimal):
                shown[name] = str(value)
        return shape(shown, self._address)

    def present(
        self,
        values: Mapping[str, Any],
        renamed: Mapping[str, str] | None = None,
        seen: dict[str, set[str]] | None = None,
    ) -> dict[str, Any]:
        """Only the columns ``values`` holds, as the agreement shows them (a nested ``address`` too).

        ``renamed`` maps a key of ``values`` to the column of this table it shows (``relative_name`` →
        ``name``); keys that are no column of the table pass as they are. ``seen`` collects the keys
        shown by action (``clear`` for protected columns only, ``masked``, ``withheld``).
        """
        shown: dict[str, Any] = {}
        for key, value in values.items():
            column = renamed.get(key, key) if renamed else key
            if key == "address" and isinstance(value, Mapping):
                shown[key] = self.present(value, None, seen)
                continue
            shown[key] = self.show(column, value)
            if seen is not None and column in self.actions:
                action = self.actions[column]
                if action != CLEAR or self.contract.column(column).protected:
                    seen.setdefault(action, set()).add(key)
        return shown

    def show(self, column: str, value: Any) -> Any:
        """``value`` of ``column`` as the agreement shows it (a name that is no column shows as it is)."""
        action = self.actions.get(column, CLEAR)
        if action == WITHHELD:
            return None
        if action == MASKED and value is not None:
            return MASKS[str(self.contract.column(column).mask)](value)
        return str(value) if isinstance(value, Decimal) else value

    def subjects_of(self, row: Row) -> list[str]:
        """The resident ids ``row`` is about (the subject index of the audit)."""
        return [str(row[c]) for c in self.subjects if row.get(c) is not None]


def shape(flat: dict[str, Any], nested_address: bool) -> dict[str, Any]:
    """Address columns under ``address`` and provenance under ``provenance``, the rest as they are."""
    provenance = {name: flat.pop(name, None) for name, _ in PROVENANCE}
    if nested_address:
        address = {name: flat.pop(name, None) for name in ADDRESS_COLUMNS}
        flat["address"] = address
    flat["provenance"] = provenance
    return flat


class Disclosures:
    """Plans by (table, agreement), built once each: a read costs a dictionary lookup, not a plan."""

    def __init__(self, catalog: Catalog) -> None:
        self.contracts = contracts(catalog)
        self._plans: dict[tuple[str, str | None, frozenset[str]], Plan] = {}

    def plan(self, table: str, agreement: Agreement | None) -> Plan:
        """The plan of ``table`` under ``agreement`` (keyed by its id and fields: a changed agreement
        gets a new plan)."""
        cache_key = (
            table,
            None if agreement is None else agreement.id,
            frozenset() if agreement is None else agreement.fields,
        )
        plan = self._plans.get(cache_key)
        if plan is None:
            if len(self._plans) > 10_000:
                self._plans.clear()
            plan = self._plans[cache_key] = Plan(self.contracts[table], agreement)
        return plan
