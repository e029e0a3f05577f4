"""The reactions between agencies as a user gets them: through ``govbus consume``, ``lag`` and ``dlq``.

Every command runs as ``python -m govbus`` in a fresh process against the session's broker, the test
gateway's registry and a SQLite read model of the test's own, under a topic prefix of its own. A
resident is granted a benefit, then dies; the reaction run by the CLI publishes the suspension and
the benefits read model shows it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from consumers.reactions import REACTIONS
from consumers.reactions.core import reaction_id
from govbus.bootstrap import build_publisher
from govbus.topics import create_bus_topics
from producers.simulators import benefits
from producers.simulators import residents as register
from producers.simulators.simulation import typed_events
from schemas.registry_client import RegistryClient
from tests.integration.test_reactions import read_topic
from tests.support import cli_env, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
RESIDENT = "R000900000001"
BENEFIT = "W000900000001"
GRANT_ID = "e2e-grant-0001"
DEATH_ID = "e2e-death-0001"
POISON_ID = "e2e-poison-0001"


def _env(settings: Settings, gateway_url: str) -> dict[str, str]:
    return {**os.environ, **cli_env(settings, gateway_url)}


def _govbus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govbus", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
        check=False,
    )


def _templates() -> tuple[dict[str, Any], dict[str, Any]]:
    """A simulated open-ended grant's payload and a simulated death's payload, to fill in."""
    kinds = frozenset({register.DECEASED, benefits.GRANTED})
    events = list(typed_events(kinds, 400, seed=3, residents=50))
    grant = next(e for e in events if e.type == benefits.GRANTED and e.data["effective_until"] is None)
    death = next(e for e in events if e.type == register.DECEASED)
    return dict(grant.data), dict(death.data)


def _publish_grant_then_death(settings: Settings, registry: RegistryClient) -> None:
    """Finance grants RESIDENT an open-ended benefit; later localgov reports RESIDENT's death."""
    grant, death = _templates()
    granted_on = date(2025, 3, 1)
    grant.update(
        benefit_id=BENEFIT,
        recipient_resident_id=RESIDENT,
        effective_from=granted_on,
        decided_on=granted_on,
    )
    died_on = granted_on + timedelta(days=200)
    death.update(resident_id=RESIDENT, died_on=died_on, reported_on=died_on)
    finance = build_publisher(settings, "finance", registry=registry)
    finance.publish(benefits.GRANTED, grant, event_id=GRANT_ID, time=datetime(2025, 3, 1, 9))
    finance.close()
    localgov = build_publisher(settings, "localgov", registry=registry)
    localgov.publish(register.DECEASED, death, event_id=DEATH_ID, time=datetime(2025, 9, 17, 9))
    localgov.close()


def _benefit_row(env: dict[str, str]) -> dict[str, Any] | None:
    """The benefits read model's row of BENEFIT, as ``govbus readmodel dump benefits`` prints it."""
    run = _govbus(env, "readmodel", "dump", "benefits", "--table", "benefits")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    return next((row for row in rows if row["benefit_id"] == BENEFIT), None)


def _suspended(env: dict[str, str]) -> dict[str, Any] | None:
    row = _benefit_row(env)
    return row if row is not None and row["suspension_cause_event_id"] else None


def _assert_suspended_for_the_death(
    row: dict[str, Any] | None, settings: Settings, registry: RegistryClient
) -> None:
    """BENEFIT's row names the death as the suspension's cause; finance.benefit holds one suspension."""
    assert row is not None, "the benefits read model has no row for the granted benefit"
    assert row["status"] == "SUSPENDED"
    assert (row["suspension_reason"], row["suspension_cause_event_id"]) == ("RECIPIENT_DECEASED", DEATH_ID)
    connection = KafkaConnection(settings.kafka_bootstrap)
    records = read_topic(connection, registry, settings.topic_prefix + "finance.benefit")
    suspensions = [(envelope, data) for envelope, data in records if envelope.type == benefits.SUSPENDED]
    assert len(suspensions) == 1
    envelope, data = suspensions[0]
    assert envelope.id == reaction_id(DEATH_ID, BENEFIT) == row["event_id"]
    assert envelope.extensions["causationid"] == DEATH_ID
    assert envelope.source == "urn:govbus:agency:finance"
    assert data["recipient_resident_id"] == RESIDENT


def _lag_totals(stdout: str) -> dict[str, int]:
    """``govbus lag``'s output as adapter → total lag."""
    totals: dict[str, int] = {}
    adapter = ""
    for line in stdout.splitlines():
        if not line.startswith(" "):
            adapter = line.strip()
        elif line.strip().startswith("total lag "):
            totals[adapter] = int(line.split()[-1])
    return totals


def test_a_running_consume_suspends_a_deceased_residents_benefit(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient, tmp_path: Path
) -> None:
    """``govbus consume`` with no names runs the reactions: a grant then a death ends in a suspended row."""
    env = _env(bus_settings, gateway_url)
    create_bus_topics(bus_settings)
    ready_file = tmp_path / "consumers.ready"
    log = tmp_path / "consume.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "govbus", "consume", "--ready-file", str(ready_file)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: (
                ready_file.exists() and set(json.loads(ready_file.read_text())["emitting"]) == set(REACTIONS)
            ),
            timeout_s=60,
            what="every reaction to be emitting",
        )
        assert json.loads(ready_file.read_text())["pid"] == process.pid
        _publish_grant_then_death(bus_settings, registry)
        row = wait_for(lambda: _suspended(env), timeout_s=60, what="the benefit to be suspended")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text(encoding="utf-8")[-3000:]
    assert not ready_file.exists(), "the ready file outlived the command"
    _assert_suspended_for_the_death(row, bus_settings, registry)


def test_consume_until_caught_up_runs_the_reactions_before_the_read_models(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """After ``consume --until-caught-up`` exits 0 the read model holds the suspension; all lags are 0."""
    env = _env(bus_settings, gateway_url)
    create_bus_topics(bus_settings)
    _publish_grant_then_death(bus_settings, registry)

    before = _govbus(env, "lag", *REACTIONS)
    assert before.returncode == 0, before.stderr
    # Nothing decided yet: the death (localgov.resident) and the grant (finance.benefit) are lag.
    assert _lag_totals(before.stdout) == {"finance-reactions": 2, "personnel-reactions": 1}
    assert "applied        -" in before.stdout

    consumed = _govbus(env, "consume", "--until-caught-up")
    assert consumed.returncode == 0, consumed.stderr
    assert "1 events published by 2 reactions" in consumed.stderr + consumed.stdout
    _assert_suspended_for_the_death(_benefit_row(env), bus_settings, registry)

    after = _govbus(env, "lag")
    assert after.returncode == 0, after.stderr
    totals = _lag_totals(after.stdout)
    assert set(REACTIONS) <= totals.keys()
    assert "benefits" in totals
    assert set(totals.values()) == {0}, after.stdout


def test_a_reactions_dead_letters_are_listed_and_replay_refuses_in_one_line(
    bus_settings: Settings, gateway_url: str, registry: RegistryClient
) -> None:
    """A death that cannot be decoded is in ``dlq list finance-reactions``; ``dlq replay`` says why not."""
    env = _env(bus_settings, gateway_url)
    create_bus_topics(bus_settings)
    raw = Producer(KafkaConnection(bus_settings.kafka_bootstrap).producer())
    raw.produce(
        bus_settings.topic_prefix + "localgov.resident",
        key=RESIDENT.encode(),
        value=b"not avro at all",
        headers=[
            ("ce_id", POISON_ID.encode()),
            ("ce_source", b"urn:test"),
            ("ce_type", register.DECEASED.encode()),
            ("ce_specversion", b"1.0"),
            ("ce_time", b"2026-01-01T00:00:00Z"),
        ],
    )
    assert raw.flush(10) == 0

    consumed = _govbus(env, "consume", "finance-reactions", "--until-caught-up")
    assert consumed.returncode == 0, consumed.stderr
    listed = _govbus(env, "dlq", "list", "finance-reactions", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(x["event_id"], x["event_type"], x["topic"]) for x in letters] == [
        (POISON_ID, register.DECEASED, bus_settings.topic_prefix + "localgov.resident")
    ]
    assert letters[0]["error"] == "SerializationError"
    lag = _govbus(env, "lag", "finance-reactions")
    assert lag.returncode == 0, lag.stderr
    assert _lag_totals(lag.stdout) == {"finance-reactions": 0}

    replay = _govbus(env, "dlq", "replay", "finance-reactions")
    assert replay.returncode == 1
    assert len(replay.stderr.strip().splitlines()) == 1, replay.stderr
    assert "kafka-consumer-groups.sh --reset-offsets" in replay.stderr
    assert f"{bus_settings.topic_prefix}govbus.finance-reactions" in replay.stderr


def test_an_unknown_name_fails_before_anything_starts_listing_both_kinds(tmp_path: Path) -> None:
    """``govbus consume nosuch`` exits 1 in one line naming the read models and the reactions."""
    env = {**os.environ, "GOVBUS_HOME": str(tmp_path), "GOVBUS_KAFKA_BOOTSTRAP": "127.0.0.1:9"}
    run = _govbus(env, "consume", "residents", "nosuch")
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "unknown adapter 'nosuch'" in run.stderr
    assert "read models: residents" in run.stderr
    assert "reactions: finance-reactions, personnel-reactions" in run.stderr
