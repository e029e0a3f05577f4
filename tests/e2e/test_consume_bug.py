"""A bug in projection code stops ``govbus consume`` with exit 1, records nothing, and loses nothing.

The consumer runs as an operator runs it, against the session's broker, the test gateway's registry
and a SQLite read model. The bug is injected into that one process only: ``python -c`` replaces the
residents model's ResidentMoved handler with one that reads a field the payload does not have (a
``KeyError``, as a typo in a projection would raise) and then calls the CLI's entry point. Every
resident is registered and applied first; then only moves are published, so every batch the buggy
consumer takes holds one. Afterwards a normal ``govbus consume`` applies every move exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bus.settings import Settings
from consumers.stores import open_store
from govbus.bootstrap import build_publisher
from govbus.topics import create_bus_topics
from producers.simulators.localgov import LocalGovSimulator
from producers.simulators.world import SimulatedEvent
from schemas.registry_client import RegistryClient
from tests.support import cli_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
REGISTERED = "govbus.localgov.ResidentRegistered"
MOVED = "govbus.localgov.ResidentMoved"
BUGGY_GOVBUS = """
import sys
from consumers.projections import localgov

def moved_with_a_typo(rows, data):
    data["moved_onn"]

localgov._RESIDENT_HANDLERS["ResidentMoved"] = moved_with_a_typo
from govbus.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _govbus(env: dict[str, str], *args: str, buggy: bool = False) -> subprocess.CompletedProcess[str]:
    """``govbus ARGS`` in a fresh process; with ``buggy``, one whose ResidentMoved handler has a bug."""
    program = ["-c", BUGGY_GOVBUS] if buggy else ["-m", "govbus"]
    return subprocess.run(
        [sys.executable, *program, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=180,
        check=False,
    )


def _env(settings: Settings, gateway_url: str) -> dict[str, str]:
    return cli_env(settings, gateway_url, GOVBUS_LOG_FORMAT="json")


def _publish(settings: Settings, registry: RegistryClient, events: list[SimulatedEvent]) -> None:
    publisher = build_publisher(settings, "localgov", registry=registry)
    try:
        for event in events:
            publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
    finally:
        publisher.close()


def _dump(env: dict[str, str]) -> list[dict[str, Any]]:
    run = _govbus(env, "readmodel", "dump", "residents")
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def _log_lines(stderr: str) -> tuple[list[dict[str, Any]], list[str]]:
    """stderr split into structlog JSON events and the other lines."""
    events: list[dict[str, Any]] = []
    other: list[str] = []
    for line in stderr.splitlines():
        try:
            found = json.loads(line)
        except json.JSONDecodeError:
            found = None
        if isinstance(found, dict):
            events.append(found)
        else:
            other.append(line)
    return events, other


def test_a_projection_bug_exits_1_records_nothing_and_a_fixed_run_applies_every_event_once(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """A KeyError: exit 1, projection.bug with coordinates, nothing recorded; a fixed run applies all once."""
    env = _env(bus_settings, gateway_url)
    create_bus_topics(bus_settings)
    topic = bus_settings.topic_prefix + "localgov.resident"
    events = list(LocalGovSimulator(seed=7, residents=40).events(300))
    registered = [e for e in events if e.type == REGISTERED]
    moves = [e for e in events if e.type == MOVED]
    _publish(bus_settings, registry, registered)
    first = _govbus(env, "consume", "residents", "--until-caught-up")
    assert first.returncode == 0, first.stderr
    store = open_store(bus_settings.readmodel_url)
    try:
        before = store.positions("residents")
        assert sum(offset + 1 for offset in before.values()) == len(registered)
        assert len(before) == bus_settings.topic_partitions
        rows_before = _dump(env)

        _publish(bus_settings, registry, moves)
        buggy = _govbus(env, "consume", "residents", "--until-caught-up", buggy=True)

        assert buggy.returncode == 1, buggy.stderr[-3000:]
        logs, other = _log_lines(buggy.stderr)
        assert "KeyError" in other[-1]
        assert "moved_onn" in other[-1]
        bugs = [line for line in logs if line.get("event") == "projection.bug"]
        assert len(bugs) == 1, logs
        bug = bugs[0]
        assert (bug["adapter"], bug["event_type"], bug["topic"]) == ("residents", MOVED, topic)
        assert bug["offset"] == before[(topic, bug["partition"])] + 1  # the first move of its partition
        assert bug["event_id"] in {e.id for e in moves}
        assert "KeyError" in bug["exception"]
        assert store.positions("residents") == before
        assert _dump(env) == rows_before
        lag = _govbus(env, "lag", "residents")
        assert lag.returncode == 0, lag.stderr
        assert f"total lag {len(moves)}" in lag.stdout

        fixed = _govbus(env, "consume", "residents", "--until-caught-up")
        assert fixed.returncode == 0, fixed.stderr
        assert f"caught up: {len(moves)} events applied by 1 read models" in fixed.stdout
        after = store.positions("residents")
        assert sum(offset + 1 for offset in after.values()) == len(registered) + len(moves)
    finally:
        store.close()
    last_move = {e.data["resident_id"]: e for e in moves}
    rows = {row["resident_id"]: row for row in _dump(env)}
    assert set(rows) == {e.data["resident_id"] for e in registered}
    for resident, move in last_move.items():
        assert rows[resident]["event_id"] == move.id
    assert "total lag 0" in _govbus(env, "lag", "residents").stdout


def test_a_projection_bug_is_reported_in_one_line(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """Besides the JSON log, stderr holds one line that names the bug: the exception type and message."""
    create_bus_topics(bus_settings)
    events = list(LocalGovSimulator(seed=7, residents=40).events(300))
    move = next(e for e in events if e.type == MOVED)
    registration = next(
        e for e in events if e.type == REGISTERED and e.data["resident_id"] == move.data["resident_id"]
    )
    _publish(bus_settings, registry, [registration, move])

    buggy = _govbus(_env(bus_settings, gateway_url), "consume", "residents", "--until-caught-up", buggy=True)

    assert buggy.returncode == 1, buggy.stderr[-3000:]
    _, other = _log_lines(buggy.stderr)
    assert other == [other[0]], buggy.stderr[-3000:]
    assert other[0].startswith("govbus: error: ")
    assert "KeyError" in other[0]
    assert "moved_onn" in other[0]
