"""Shared fixtures: one real Kafka broker per test session, and unique names so tests never share data.

Broker choice, in order: ``GOVBUS_KAFKA_BOOTSTRAP`` set → that cluster; a Docker engine answers →
testcontainers' Kafka (KRaft); otherwise the local broker that ``govbus kafka up`` runs, from the
jars under ``.govbus/kafka`` (fetched on first use). A broker this session started is stopped at
its end; one that was already running is left alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bus.settings import Settings
from govbus.local_kafka import LocalKafka

if TYPE_CHECKING:
    from schemas.registry_client import RegistryClient

ROOT = Path(__file__).resolve().parents[1]
# Tests use their own broker port so they never collide with a `make demo` broker on 9092.
TEST_KAFKA_PORT = int(os.environ.get("GOVBUS_TEST_KAFKA_PORT", "19092"))


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for this test session."""
    configured = os.environ.get("GOVBUS_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = LocalKafka(ROOT / ".govbus" / "kafka-test", port=TEST_KAFKA_PORT)
    # Share the jars fetched by `make setup` instead of downloading them a second time.
    main_libs = ROOT / ".govbus" / "kafka" / "libs"
    if main_libs.exists() and not broker.libs.exists():
        broker.home.mkdir(parents=True, exist_ok=True)
        broker.libs.symlink_to(main_libs, target_is_directory=True)
    started = broker.up()
    try:
        yield broker.bootstrap
    finally:
        if started:
            broker.down()


@pytest.fixture
def unique_name() -> str:
    """A short random suffix for topics, groups and subjects that only this test uses."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def bus_settings(kafka_bootstrap: str, tmp_path: Path, unique_name: str) -> Settings:
    """Settings for one test: its own topic prefix and read-model file on the session's broker."""
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{unique_name}.",
        readmodel_url=f"sqlite:///{tmp_path / 'readmodel.sqlite'}",
        home=tmp_path / "home",
    )


@pytest.fixture
def gateway_url(bus_settings: Settings, unique_name: str) -> Iterator[str]:
    """Base URL of a real gateway (registry on its own `_schemas` topic) served over HTTP for one test."""
    from gateway.server import serve_in_thread
    from govbus.bootstrap import build_gateway, build_registry
    from govbus.dev_identities import ensure_dev_identities

    ensure_dev_identities(bus_settings)
    registry = build_registry(bus_settings, topic=f"_schemas-{unique_name}")
    with serve_in_thread(build_gateway(bus_settings, registry)) as base:
        yield base


@pytest.fixture
def registry(gateway_url: str, bus_settings: Settings) -> Iterator[RegistryClient]:
    """A registry client on the test gateway with the catalog registered."""
    from bus.credentials import client_credential
    from schemas.catalog import load_catalog
    from schemas.catalog_sync import register_catalog
    from schemas.registry_client import RegistryClient

    client = RegistryClient(f"{gateway_url}/registry", credential=client_credential(bus_settings))
    register_catalog(client, load_catalog())
    yield client
    client.close()


def _two_free_ports() -> int:
    from gateway.server import free_port

    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own (not yet started) that it may stop and restart; stopped afterwards."""
    kafka = LocalKafka(tmp_path / "kafka", port=_two_free_ports())
    kafka.home.mkdir(parents=True)
    shared_libs = ROOT / ".govbus" / "kafka" / "libs"
    if shared_libs.exists():
        kafka.libs.symlink_to(shared_libs, target_is_directory=True)
    yield kafka
    kafka.down()
