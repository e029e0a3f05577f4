"""Every agency read model against the simulated world: what they accept, batch sizes, partition order.

Also the harness the per-agency projection tests share: the simulated events of all agencies as the
consumer sees them (encoded and decoded through the catalog schema, placed on a topic, partition
and offset) and a replay of them into a read model batch by batch over ``MemoryRows``.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import pytest

from bus.errors import ProjectionError
from consumers.events import DecodedEvent
from consumers.projections import READ_MODELS
from consumers.readmodel import PROVENANCE, MemoryRows, ReadModel, Row, WorkingSet
from producers.simulators.simulation import simulated_events
from schemas.catalog import load_catalog
from schemas.codec import decode_body, decode_header, encode

WORLD_EVENTS = 30_000
WORLD_SEED = 7
PARTITIONS = 3
REFUSALS = (ProjectionError,)  # the models refuse only so; any other error is a bug and fails the test


@cache
def world() -> tuple[DecodedEvent, ...]:
    """All agencies' simulated events, decoded as the consumer decodes them, in publishing order."""
    catalog = load_catalog()
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    decoded = []
    for event in simulated_events("all", WORLD_EVENTS, WORLD_SEED):
        event_type = catalog.get(event.type)
        key = str(event.data[event_type.key_field])
        partition = zlib.crc32(key.encode()) % PARTITIONS
        _, body = decode_header(encode(1, event_type.parsed, event.data))
        data = decode_body(body, event_type.parsed, event_type.parsed)
        position = (event_type.topic, partition)
        decoded.append(
            DecodedEvent(
                type=event.type,
                id=event.id,
                source=f"urn:govbus:agency:{event.agency}",
                time=event.time,
                data=data,
                topic=event_type.topic,
                partition=partition,
                offset=offsets[position],
            )
        )
        offsets[position] += 1
    return tuple(decoded)


def named(name: str) -> list[DecodedEvent]:
    """The world's events of one record name, e.g. ``ResidentMoved``."""
    return [event for event in world() if event.name == name]


def events_for(model: ReadModel, events: Iterable[DecodedEvent] | None = None) -> list[DecodedEvent]:
    """The events on the model's topics."""
    return [e for e in (world() if events is None else events) if e.topic in model.topics]


@dataclass
class Replay:
    """A read model's rows after a replay, and the events it refused with their errors."""

    rows: MemoryRows = field(default_factory=MemoryRows)
    refused: list[tuple[DecodedEvent, Exception]] = field(default_factory=list)

    def table(self, name: str) -> dict[Any, Row]:
        """The rows of a table by primary key (a one-column key unwrapped)."""
        rows = self.rows.tables.get(name, {})
        return {key[0] if len(key) == 1 else key: row for key, row in rows.items()}


def replay(
    model: ReadModel,
    events: Sequence[DecodedEvent] | None = None,
    batch_size: int = 100,
    into: Replay | None = None,
) -> Replay:
    """Apply the events on the model's topics in batches, as the runtime does, writing each batch back."""
    result = Replay() if into is None else into
    mine = events_for(model, events)
    for start in range(0, len(mine), batch_size):
        batch = mine[start : start + batch_size]
        rows = WorkingSet(result.rows, model.tables)
        rows.prefetch(hint for event in batch for hint in model.prefetch(event))
        for event in batch:
            rows.begin(event)
            try:
                model.apply(rows, event)
            except REFUSALS as exc:
                rows.rollback()
                result.refused.append((event, exc))
            else:
                rows.commit()
        result.rows.write(rows.changes())
    return result


@cache
def replayed(name: str) -> Replay:
    """The model's rows after the whole world, in batches of 100 (computed once per model)."""
    return replay(READ_MODELS[name]())


def copy_of(event: DecodedEvent, offset_shift: int = 1_000_000, **data: Any) -> DecodedEvent:
    """The event again at a later offset with a new id, with some payload fields changed."""
    return replace(
        event, id=f"{event.id}-copy", offset=event.offset + offset_shift, data={**event.data, **data}
    )


def retyped(event: DecodedEvent, record: str, **data: Any) -> DecodedEvent:
    """A new event of another record type on the same topic, at a later offset, with this payload."""
    namespace = event.type.rsplit(".", 1)[0]
    return replace(
        event,
        type=f"{namespace}.{record}",
        id=f"{event.id}-{record}",
        offset=event.offset + 1_000_000,
        data=data,
    )


def without_provenance(row: Row) -> Row:
    """The row's declared columns."""
    return {c: v for c, v in row.items() if c not in dict(PROVENANCE)}


MODELS = sorted(READ_MODELS)


def test_the_registry_names_each_model_by_its_adapter_name() -> None:
    """Each entry of READ_MODELS builds a model of that name, and no two models share a table or topic."""
    models = [READ_MODELS[name]() for name in MODELS]
    assert [m.name for m in models] == MODELS
    tables = [t.name for m in models for t in m.tables]
    topics = [t for m in models for t in m.topics]
    assert len(tables) == len(set(tables))
    assert len(topics) == len(set(topics))
    assert set(topics) == set(load_catalog().topics())


@pytest.mark.parametrize("name", MODELS)
def test_the_simulated_world_is_accepted_whole(name: str) -> None:
    """A read model refuses none of the simulated world's events and fills every one of its tables."""
    result = replayed(name)
    assert result.refused == []
    for table in READ_MODELS[name]().tables:
        assert result.rows.rows(table.name), f"{table.name} stayed empty"


@pytest.mark.parametrize("name", MODELS)
def test_batch_size_does_not_change_the_rows(name: str) -> None:
    """Batches of 1, 100 and everything at once give the same rows, provenance included."""
    model = READ_MODELS[name]()
    whole = replay(model, batch_size=len(world()))
    assert replay(model, batch_size=1).rows.tables == replayed(name).rows.tables == whole.rows.tables


@pytest.mark.parametrize("name", MODELS)
def test_the_order_partitions_are_read_in_does_not_change_the_figures(name: str) -> None:
    """Reading one partition after another instead of interleaved leaves every declared column the same."""
    # Rows that sum several keys (a recipient's benefits, a program's lines) may span partitions:
    # their provenance names whichever event came last, but their figures must not depend on it.
    model = READ_MODELS[name]()
    by_partition = sorted(events_for(model), key=lambda e: (e.topic, e.partition, e.offset))
    other = replay(model, by_partition)
    assert other.refused == []
    expected = replayed(name).rows.tables
    assert {
        t: {k: without_provenance(r) for k, r in rows.items()} for t, rows in other.rows.tables.items()
    } == {t: {k: without_provenance(r) for k, r in rows.items()} for t, rows in expected.items()}


def test_provenance_names_the_event_that_last_changed_a_row() -> None:
    """A resident's row carries the agency, id, topic, partition, offset and time of their last event."""
    last: dict[str, DecodedEvent] = {}
    for event in events_for(READ_MODELS["residents"]()):
        last[event.data["resident_id"]] = event
    residents = replayed("residents").table("residents")
    for resident_id, event in last.items():
        row = residents[resident_id]
        assert (row["source_agency"], row["event_id"], row["event_topic"]) == (
            "localgov",
            event.id,
            event.topic,
        )
        assert (row["event_partition"], row["event_offset"]) == (event.partition, event.offset)
        assert row["event_time"] == event.time.isoformat()


def until(model: ReadModel, event: DecodedEvent) -> list[DecodedEvent]:
    """The model's events of the world up to and including ``event``."""
    mine = events_for(model)
    return mine[: mine.index(event) + 1]


def after(model: ReadModel, event: DecodedEvent, count: int = 200) -> list[DecodedEvent]:
    """The next ``count`` events of the model after ``event``."""
    mine = events_for(model)
    start = mine.index(event) + 1
    return mine[start : start + count]


def refusal(model: ReadModel, bad: DecodedEvent, before: Sequence[DecodedEvent]) -> Exception:
    """Why ``model`` refuses ``bad`` amid a batch, after checking the refusal left no trace in any table.

    ``bad`` is applied in the middle of one batch, between ``before`` and the world's next events,
    and the rows must equal those of the same batch without it.
    """
    rest = after(model, before[-1]) if before else []
    size = len(before) + len(rest) + 1
    with_bad = replay(model, [*before, bad, *rest], batch_size=size)
    without = replay(model, [*before, *rest], batch_size=size)
    assert [event for event, _ in with_bad.refused] == [bad]
    assert with_bad.rows.tables == without.rows.tables
    return with_bad.refused[0][1]


def accepted(model: ReadModel, events: Sequence[DecodedEvent]) -> Replay:
    """The rows after ``events``, applied in one batch, none of them refused."""
    result = replay(model, events, batch_size=max(len(events), 1))
    assert result.refused == []
    return result
