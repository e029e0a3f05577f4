"""The read-model commands as a user runs them: consume, dump, lag, rebuild, dlq list and dlq replay.

Every command runs as ``python -m govbus`` in a fresh process against the session's broker, the test
gateway's registry and a SQLite read model of the test's own, under a topic prefix of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from gateway.server import free_port
from govbus.bootstrap import build_publisher
from govbus.topics import create_bus_topics
from producers.simulators.localgov import LocalGovSimulator
from producers.simulators.world import SimulatedEvent
from schemas.registry_client import RegistryClient
from tests.support import cli_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RESIDENT = "govbus.localgov.ResidentRegistered"
MOVED = "govbus.localgov.ResidentMoved"
POISON_ID = "poison-0001"


def _govbus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govbus", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=180,
        check=False,
    )


def _env(settings: Settings, gateway_url: str) -> dict[str, str]:
    return cli_env(settings, gateway_url)


def _publish(settings: Settings, registry: RegistryClient, events: list[SimulatedEvent]) -> None:
    publisher = build_publisher(settings, "localgov", registry=registry)
    for event in events:
        publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
    publisher.close()


def _dump(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    run = _govbus(env, "readmodel", "dump", "residents", *args)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def _story_events() -> tuple[list[SimulatedEvent], SimulatedEvent, SimulatedEvent]:
    """Simulated resident events without one resident, that resident's registration and its first move."""
    events = list(LocalGovSimulator(seed=11, residents=12).events(120))
    moved = next(e for e in events if e.type == MOVED)
    resident = moved.data["resident_id"]
    registered = next(e for e in events if e.type == RESIDENT and e.data["resident_id"] == resident)
    others = [e for e in events if e.data.get("resident_id") != resident]
    return others, registered, moved


def test_consume_dump_lag_rebuild_and_dead_letters_replayed_after_a_fix(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """A refused move and a poison record are listed with causes; a replay after the fix applies it once."""
    env = _env(bus_settings, gateway_url)
    create_bus_topics(bus_settings)
    others, registered, moved = _story_events()
    _publish(bus_settings, registry, [*others, moved])
    raw = Producer(KafkaConnection(bus_settings.kafka_bootstrap).producer())
    raw.produce(
        bus_settings.topic_prefix + "localgov.resident",
        key=moved.data["resident_id"].encode(),
        value=b"not avro at all",
        headers=[
            ("ce_id", POISON_ID.encode()),
            ("ce_source", b"urn:test"),
            ("ce_type", MOVED.encode()),
            ("ce_specversion", b"1.0"),
            ("ce_time", b"2026-01-01T00:00:00Z"),
        ],
    )
    assert raw.flush(10) == 0
    published = len(others) + 2

    before = _govbus(env, "lag", "residents")
    assert before.returncode == 0, before.stderr
    assert f"total lag {published}" in before.stdout  # nothing applied yet: every record is lag

    consumed = _govbus(env, "consume", "residents", "--until-caught-up")
    assert consumed.returncode == 0, consumed.stderr
    rows = _dump(env)
    registered_ids = sorted({e.data["resident_id"] for e in others if e.type == RESIDENT})
    assert [r["resident_id"] for r in rows] == registered_ids
    assert all(r["table"] == "residents" and r["event_id"] and r["source_agency"] == "localgov" for r in rows)
    assert all(r["event_topic"] == bus_settings.topic_prefix + "localgov.resident" for r in rows)
    assert _dump(env, "--table", "residents") == rows

    lag = _govbus(env, "lag", "residents")
    assert lag.returncode == 0, lag.stderr
    assert "total lag 0" in lag.stdout
    assert lag.stdout.count(bus_settings.topic_prefix + "localgov.resident[") == bus_settings.topic_partitions

    rebuilt = _govbus(env, "readmodel", "rebuild", "residents")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"residents  {len(rows)} rows" in rebuilt.stdout
    assert f"{published - 2} events applied, 2 set aside as dead letters" in rebuilt.stdout
    assert _dump(env) == rows

    listed = _govbus(env, "dlq", "list", "residents", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = {letter["event_id"]: letter for letter in map(json.loads, listed.stdout.splitlines())}
    assert set(letters) == {moved.id, POISON_ID}
    assert letters[moved.id]["error"] == "ProjectionError"
    assert moved.data["resident_id"] in letters[moved.id]["reason"]
    assert letters[moved.id]["event_type"] == MOVED
    assert letters[POISON_ID]["error"] == "SerializationError"
    assert letters[POISON_ID]["topic"] == bus_settings.topic_prefix + "localgov.resident"
    plain = _govbus(env, "dlq", "list", "residents")
    assert plain.returncode == 0, plain.stderr
    assert "2 dead letters" in plain.stdout

    _publish(bus_settings, registry, [registered])  # the fix: the resident's registration arrives
    after_fix = _govbus(env, "readmodel", "rebuild", "residents")
    assert after_fix.returncode == 0, after_fix.stderr
    assert f"residents  {len(rows) + 1} rows" in after_fix.stdout
    replay = _govbus(env, "dlq", "replay", "residents", "--id", moved.id, "--id", POISON_ID)
    assert replay.returncode == 1, replay.stdout
    assert f"applied          {moved.id}" in replay.stdout
    assert f"failed           {POISON_ID}" in replay.stdout
    assert "SerializationError" in replay.stdout
    assert replay.stderr.splitlines() == [
        "govbus: error: 1 dead letters of residents failed again (see above)"
    ]
    row = next(r for r in _dump(env) if r["resident_id"] == moved.data["resident_id"])
    assert (row["event_id"], row["moved_on"]) == (moved.id, moved.data["moved_on"].isoformat())
    positions_after_replay = _govbus(env, "lag", "residents").stdout

    again = _govbus(env, "dlq", "replay", "residents", "--id", moved.id)
    assert again.returncode == 0, again.stderr
    assert "0 applied, 1 already applied, 0 failed again" in again.stdout
    assert _govbus(env, "lag", "residents").stdout == positions_after_replay


def _quiet_env(tmp_path: Path) -> dict[str, str]:
    """Nothing listens at these addresses: a command reaching for Kafka or the registry fails differently."""
    return {
        "GOVBUS_HOME": str(tmp_path),
        "GOVBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "GOVBUS_REGISTRY_URL": f"http://127.0.0.1:{free_port()}/registry",
        "GOVBUS_READMODEL_URL": f"sqlite:///{tmp_path / 'readmodel.sqlite'}",
        "GOVBUS_TOPIC_PREFIX": "",
        "GOVBUS_LOG_LEVEL": "info",
    }


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("readmodel", "rebuild", "nope"), "unknown adapter 'nope'"),
        (("readmodel", "rebuild", ""), "unknown adapter ''"),
        (("readmodel", "dump", "nope"), "unknown adapter 'nope'"),
        (("readmodel", "dump", ""), "unknown adapter ''"),
        (("readmodel", "dump", "residents", "--table", "vehicles"), "has no table 'vehicles'"),
        (("readmodel", "dump", "residents", "--table", ""), "has no table ''"),
        (("lag", "residents", "nope"), "unknown adapter 'nope'"),
        (("lag", ""), "unknown adapter ''"),
        (("dlq", "list", "nope"), "unknown adapter 'nope'"),
        (("dlq", "list", ""), "unknown adapter ''"),
        (("dlq", "replay", "nope", "--id", "x"), "unknown adapter 'nope'"),
        (("dlq", "replay", ""), "unknown adapter ''"),
    ],
)
def test_bad_names_fail_in_one_line_before_reaching_kafka(
    tmp_path: Path, args: tuple[str, ...], phrase: str
) -> None:
    """An unknown or empty adapter or table name exits 1 with one line on stderr naming it."""
    run = _govbus(_quiet_env(tmp_path), *args)
    assert run.returncode == 1, run.stderr
    assert run.stderr.splitlines() == [run.stderr.strip()]
    assert run.stderr.startswith("govbus: error: ")
    assert phrase in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("readmodel",),
        ("readmodel", "rebuild"),
        ("readmodel", "dump"),
        ("dlq", "list"),
        ("dlq", "replay"),
        ("dlq", "replay", "residents", "--id"),
        ("dlq", "list", "residents", "extra"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    """A missing or extra argument is a usage error: exit 2 with argparse's usage text."""
    run = _govbus(_quiet_env(tmp_path), *args)
    assert run.returncode == 2, run.stderr
    assert "usage: govbus" in run.stderr


def test_missing_topics_and_unknown_ids_fail_in_one_line(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """Without topics, lag and dlq list name the missing one; an unknown --id is named before any replay."""
    env = {**_env(bus_settings, gateway_url), "GOVBUS_LOG_LEVEL": "info"}
    for args, phrase in (
        (("lag", "residents"), "localgov.resident"),
        (("dlq", "list", "residents"), "residents.dlq"),
    ):
        run = _govbus(env, *args)
        assert (run.returncode, len(run.stderr.splitlines())) == (1, 1), run.stderr
        assert phrase in run.stderr
        assert "govbus topics create" in run.stderr

    create_bus_topics(bus_settings)
    run = _govbus(env, "dlq", "replay", "residents", "--id", "no-such-event")
    assert (run.returncode, len(run.stderr.splitlines())) == (1, 1), run.stderr
    assert "no dead letter of residents has event id 'no-such-event'" in run.stderr
    empty = _govbus(env, "dlq", "list", "residents")
    assert empty.returncode == 0, empty.stderr
    assert "0 dead letters" in empty.stdout


def test_consume_until_caught_up_returns_again_when_some_partitions_have_nothing_new(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """A second `consume --until-caught-up` exits 0 when only one partition received new events."""
    env = _env(bus_settings, gateway_url)
    create_bus_topics(bus_settings)
    others, registered, _ = _story_events()
    _publish(bus_settings, registry, others)
    assert _govbus(env, "consume", "residents", "--until-caught-up").returncode == 0
    _publish(bus_settings, registry, [registered])  # one key: one partition gets a record, the others none
    again = subprocess.run(
        [sys.executable, "-m", "govbus", "consume", "residents", "--until-caught-up"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=45,
        check=False,
    )
    assert again.returncode == 0, again.stderr
