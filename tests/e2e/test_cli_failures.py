"""Failures read like sentences: each command, run as a user runs it, fails in one line naming the fix.

Without a broker or a registry (a port where nothing listens), every command exits 1 within seconds
with one line on stderr that says what is wrong and which command fixes it, and no librdkafka output.
The tests marked ``integration`` use the session's broker for what needs one (a missing topic, a
read-model folder that does not exist).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus.credentials import client_credential
from bus.errors import ConfigurationError, GovbusError
from bus.settings import Settings
from gateway.server import free_port
from govbus.cli.demo import _child, _require_free_port, _wait_healthy
from producers.outbox import ensure_schema

pytestmark = pytest.mark.e2e

# Python's start-up and a 5 s broker probe fit well inside this on a busy two-core machine.
QUICK_S = 15.0
START_KAFKA = "start the local broker with `govbus kafka up` or the whole local stack with `govbus up`"
START_REGISTRY = "with `govbus gateway` or the whole local stack with `govbus up`"


@dataclass(frozen=True)
class Run:
    """What a user sees of one command: exit code, output and how long it took."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        """The lines on stderr."""
        return self.stderr.splitlines()


def _govbus(home: Path, *args: str, **env: str) -> Run:
    """Run ``govbus ARGS`` in a fresh process with nothing listening unless ``env`` says otherwise."""
    defaults = {
        "GOVBUS_HOME": str(home),
        "GOVBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "GOVBUS_REGISTRY_URL": f"http://127.0.0.1:{free_port()}/registry",
        "GOVBUS_READMODEL_URL": "",
        "GOVBUS_TOPIC_PREFIX": "",
        "GOVBUS_LOG_LEVEL": "info",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "govbus", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **defaults, **env},
        timeout=120,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def _assert_one_line(run: Run, *phrases: str) -> None:
    assert run.code == 1, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].startswith("govbus: error: ")
    for phrase in phrases:
        assert phrase in run.stderr
    assert run.seconds < QUICK_S


@pytest.fixture
def outbox_db(tmp_path: Path) -> str:
    """URL of an agency's SQLite outbox database with its tables and no rows."""
    path = tmp_path / "agency.sqlite"
    connection = sqlite3.connect(path)
    ensure_schema(connection)
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that a listening socket of this test holds."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("simulate", "--count", "10"), id="simulate"),
        pytest.param(("consume",), id="consume"),
        pytest.param(("gateway", "--port", "0"), id="gateway"),
    ],
)
def test_without_a_broker_the_command_names_govbus_kafka_up(tmp_path: Path, args: tuple[str, ...]) -> None:
    """With nothing at the bootstrap address, the command says in one line how to start Kafka and exits 1."""
    run = _govbus(tmp_path, *args)
    _assert_one_line(run, "does not answer within 5s", START_KAFKA, "GOVBUS_KAFKA_BOOTSTRAP")


def test_the_outbox_relay_without_a_broker_names_govbus_kafka_up(tmp_path: Path, outbox_db: str) -> None:
    """The outbox relay on a good database but no broker says in one line how to start Kafka and exits 1."""
    run = _govbus(tmp_path, "outbox", "relay", "--db", outbox_db, "--agency", "localgov")
    _assert_one_line(run, "does not answer within 5s", START_KAFKA)


@pytest.mark.parametrize("action", ["register", "list", "check"])
def test_schemas_without_a_registry_names_govbus_gateway(tmp_path: Path, action: str) -> None:
    """``govbus schemas`` with nothing at the registry URL says in one line how to start it and exits 1."""
    run = _govbus(tmp_path, "schemas", action)
    _assert_one_line(run, "is unreachable", START_REGISTRY, "GOVBUS_REGISTRY_URL")


def test_the_gateway_on_a_busy_port_says_so_in_one_line(tmp_path: Path, busy_port: int) -> None:
    """A gateway asked to listen on a port that is taken exits 1 at once, naming the port and --port."""
    run = _govbus(tmp_path, "gateway", "--port", str(busy_port))
    _assert_one_line(run, f"port {busy_port} on 127.0.0.1 is in use; stop what holds it or pass --port")


def test_the_demo_notices_at_once_that_its_gateway_exited(busy_port: int) -> None:
    """The demo's wait for its gateway ends as soon as the child exits, with its exit code and last line."""
    started = time.monotonic()
    with (
        pytest.raises(GovbusError) as raised,
        _child("gateway", ["gateway", "--port", str(busy_port)]) as gateway,
    ):
        _wait_healthy(f"http://127.0.0.1:{busy_port}", gateway)
    assert time.monotonic() - started < QUICK_S
    message = str(raised.value)
    assert message.startswith("the gateway exited with code 1; the last lines it printed:")
    assert f"govbus: error: port {busy_port} on 127.0.0.1 is in use" in message


def test_the_demo_refuses_a_gateway_address_that_something_else_holds(busy_port: int) -> None:
    """Before starting its gateway the demo refuses a taken port, so no other server answers in its place."""
    with pytest.raises(ConfigurationError, match=rf"^127\.0\.0\.1:{busy_port} is in use, and the demo"):
        _require_free_port(f"http://127.0.0.1:{busy_port}")


@pytest.mark.integration
def test_simulate_without_a_registry_names_govbus_gateway(tmp_path: Path, kafka_bootstrap: str) -> None:
    """simulate with a broker but no registry says in one line how to start the gateway and exits 1."""
    run = _govbus(tmp_path, "simulate", "--count", "10", GOVBUS_KAFKA_BOOTSTRAP=kafka_bootstrap)
    _assert_one_line(run, "schema registry", "is unreachable", START_REGISTRY)


@pytest.mark.integration
def test_simulate_to_missing_topics_names_govbus_topics_create(
    tmp_path: Path, bus_settings: Settings, gateway_url: str
) -> None:
    """simulate with no catalog topics names the first missing topic and `govbus topics create`."""
    run = _govbus(
        tmp_path,
        "simulate",
        "--count",
        "50",
        GOVBUS_KAFKA_BOOTSTRAP=bus_settings.kafka_bootstrap,
        GOVBUS_REGISTRY_URL=f"{gateway_url}/registry",
        GOVBUS_TOPIC_PREFIX=bus_settings.topic_prefix,
        GOVBUS_CREDENTIALS=client_credential(bus_settings, "localgov") or "",
    )
    topic = f"{bus_settings.topic_prefix}localgov.resident"
    _assert_one_line(run, f"topic '{topic}' does not exist", "govbus topics create")


@pytest.mark.integration
def test_consume_with_missing_topics_names_them_and_govbus_topics_create(
    tmp_path: Path, bus_settings: Settings, gateway_url: str
) -> None:
    """consume with no topics on the cluster names the adapter's topics and `govbus topics create`."""
    prefix = bus_settings.topic_prefix
    run = _govbus(
        tmp_path,
        "consume",
        "residents",
        GOVBUS_KAFKA_BOOTSTRAP=bus_settings.kafka_bootstrap,
        GOVBUS_REGISTRY_URL=f"{gateway_url}/registry",
        GOVBUS_TOPIC_PREFIX=prefix,
        GOVBUS_CREDENTIALS=client_credential(bus_settings) or "",
    )
    _assert_one_line(
        run, f"{prefix}localgov.resident, {prefix}residents.dlq", "create the catalog's topics with"
    )


@pytest.mark.integration
def test_a_read_model_url_in_a_missing_folder_is_refused_in_one_line(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """The gateway refuses a read-model URL whose folder does not exist instead of creating an empty store."""
    missing = tmp_path / "no-such-folder"
    run = _govbus(
        tmp_path,
        "gateway",
        "--port",
        "0",
        GOVBUS_KAFKA_BOOTSTRAP=kafka_bootstrap,
        GOVBUS_READMODEL_URL=f"sqlite:///{missing / 'readmodel.sqlite'}",
    )
    _assert_one_line(run, f"read-model folder {missing} does not exist")
    assert not missing.exists()


@pytest.mark.integration
def test_a_command_without_a_credential_says_how_to_get_one(
    tmp_path: Path, bus_settings: Settings, gateway_url: str
) -> None:
    """consume with no credential for the gateway's registry fails in one line naming GOVBUS_CREDENTIALS."""
    run = _govbus(
        tmp_path,
        "consume",
        "residents",
        GOVBUS_KAFKA_BOOTSTRAP=bus_settings.kafka_bootstrap,
        GOVBUS_REGISTRY_URL=f"{gateway_url}/registry",
        GOVBUS_TOPIC_PREFIX=bus_settings.topic_prefix,
    )
    _assert_one_line(run, "refused this process's credential", "GOVBUS_CREDENTIALS")
