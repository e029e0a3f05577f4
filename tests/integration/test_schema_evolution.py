"""Schema evolution: events written with an older and a newer version of a schema project like the catalog's.

The registry's subject for ``ResidentMoved`` holds three real versions: an older one whose address
has no ``detail`` (registered first), the catalog's, and a newer one with an optional ``move_reason``.
The test writes the register's events with each of them (wire format with that version's schema
id, CloudEvents headers) and runs the residents adapter: the decoder resolves every writer schema to
the catalog's reader schema, so each move applies, and the read model equals the one built from the
same events written with the catalog's version only.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Producer

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from consumers.adapters import build_read_model
from consumers.readmodel import PROVENANCE
from consumers.stores import open_store
from govbus.bootstrap import agency_source, build_registry_client, build_runner
from govbus.topics import create_bus_topics
from producers.simulators.simulation import typed_events
from producers.simulators.world import SimulatedEvent
from schemas.catalog import load_catalog
from schemas.catalog_sync import register_catalog
from schemas.codec import encode
from schemas.envelope import CloudEvent
from tests.integration.test_runtime_kill import figures, publish_world

pytestmark = pytest.mark.integration
MOVED = "govbus.localgov.ResidentMoved"
TYPES = frozenset({"govbus.localgov.ResidentRegistered", MOVED, "govbus.localgov.ResidentDeceased"})


def older_version(schema: dict[str, Any]) -> dict[str, Any]:
    """The move as first published: an address without ``detail``."""
    older = copy.deepcopy(schema)
    address = next(f for f in older["fields"] if f["name"] == "new_address")["type"]
    address["fields"] = [f for f in address["fields"] if f["name"] != "detail"]
    return older


def newer_version(schema: dict[str, Any]) -> dict[str, Any]:
    """The move with an optional reason, added compatibly (a default)."""
    newer = copy.deepcopy(schema)
    newer["fields"].append(
        {
            "name": "move_reason",
            "type": ["null", "string"],
            "default": None,
            "classification": "internal",
            "doc": "Why the resident moved, when they said.",
        }
    )
    return newer


def write_raw(
    connection: KafkaConnection,
    topic: str,
    events: Iterable[tuple[SimulatedEvent, int, Any, dict[str, Any]]],
) -> None:
    """Produce each event as wire format with its writer's schema id, with CloudEvents headers."""
    producer = Producer(connection.producer())
    for event, schema_id, parsed, data in events:
        envelope = CloudEvent(source=agency_source("localgov"), type=event.type, id=event.id, time=event.time)
        producer.produce(
            topic,
            key=data["resident_id"].encode(),
            value=encode(schema_id, parsed, data),
            headers=envelope.headers(),
        )
    assert producer.flush(30) == 0


def test_moves_written_with_an_older_and_a_newer_schema_version_project_like_the_catalog_version(
    bus_settings: Settings, gateway_url: str, tmp_path: Path
) -> None:
    """Moves written with three registered versions of ResidentMoved all apply, as their catalog twins."""
    catalog = load_catalog()
    moved = catalog.get(MOVED)
    registry = build_registry_client(
        bus_settings.model_copy(update={"registry_url": f"{gateway_url}/registry"})
    )
    registry.set_compatibility("BACKWARD_TRANSITIVE", moved.subject)
    schemas = {"older": older_version(dict(moved.schema)), "newer": newer_version(dict(moved.schema))}
    ids = {"older": registry.register(moved.subject, json.dumps(schemas["older"]))}
    register_catalog(registry, catalog)
    ids["catalog"] = registry.lookup(moved.subject, moved.schema_text)
    ids["newer"] = registry.register(moved.subject, json.dumps(schemas["newer"]))
    assert len(set(ids.values())) == 3
    assert registry.versions(moved.subject) == [1, 2, 3]
    parsed = {name: fastavro.parse_schema(schema) for name, schema in schemas.items()}
    parsed["catalog"] = moved.parsed

    create_bus_topics(bus_settings)
    events = list(typed_events(TYPES, 1500, seed=13))
    writers = ("older", "catalog", "newer")
    raw: list[tuple[SimulatedEvent, int, Any, dict[str, Any]]] = []
    as_catalog: list[SimulatedEvent] = []
    moves = 0
    for event in events:
        data = copy.deepcopy(event.data)
        if event.type != MOVED:
            kind = catalog.get(event.type)
            raw.append((event, registry.lookup(kind.subject, kind.schema_text), kind.parsed, data))
            as_catalog.append(event)
            continue
        writer = writers[moves % 3]
        moves += 1
        if writer == "older":
            del data["new_address"]["detail"]
        elif writer == "newer":
            data["move_reason"] = f"reason {moves}"
        raw.append((event, ids[writer], parsed[writer], data))
        # What the catalog's reader makes of it: no detail (the default) and no reason.
        expected = copy.deepcopy(event.data)
        expected["new_address"]["detail"] = data["new_address"].get("detail")
        as_catalog.append(event._replace(data=expected))
    assert moves >= 30
    write_raw(
        KafkaConnection(bus_settings.kafka_bootstrap), bus_settings.topic_prefix + "localgov.resident", raw
    )
    store = open_store(bus_settings.effective_readmodel_url)
    runner = build_runner(bus_settings, "residents", store=store, registry=registry)
    runner.run(threading.Event(), until_caught_up=True)
    assert (runner.stats.applied, runner.stats.dead_lettered) == (len(events), 0)

    twin = bus_settings.model_copy(
        update={
            "topic_prefix": bus_settings.topic_prefix + "twin.",
            "readmodel_url": f"sqlite:///{tmp_path / 'twin.sqlite'}",
        }
    )
    create_bus_topics(twin)
    publish_world(twin, registry, as_catalog)
    twin_store = open_store(twin.effective_readmodel_url)
    twin_runner = build_runner(twin, "residents", store=twin_store, registry=registry)
    twin_runner.run(threading.Event(), until_caught_up=True)
    try:
        # Where the records sat differs (another prefix, another producer); every other column,
        # the event ids too, must agree.
        table = build_read_model("residents").tables[0]
        where = ("event_topic", "event_partition", "event_offset")
        assert set(where) <= {name for name, _ in PROVENANCE}
        got, want = figures(store.dump(table), where), figures(twin_store.dump(table), where)
        assert got == want
        assert any(row["detail"] is None for row in got)
        assert any(row["detail"] is not None for row in got)
    finally:
        store.close()
        twin_store.close()
        registry.close()
