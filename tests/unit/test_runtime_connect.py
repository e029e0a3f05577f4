"""The projection runtime's connect deadline: with no broker it fails at start, not retrying forever."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bus.errors import KafkaUnavailableError
from bus.kafka_config import KafkaConnection
from consumers.decoder import EventDecoder
from consumers.projections.localgov import ResidentsModel
from consumers.runtime import ReadModelRunner
from consumers.stores import open_store
from gateway.server import free_port
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient


def test_a_runner_without_a_broker_raises_after_its_connect_deadline(tmp_path: Path) -> None:
    """run() against a port where nothing listens raises KafkaUnavailableError within the deadline."""
    bootstrap = f"127.0.0.1:{free_port()}"
    registry = RegistryClient(f"http://127.0.0.1:{free_port()}/registry")
    runner = ReadModelRunner(
        KafkaConnection(bootstrap),
        ResidentsModel(),
        open_store(f"sqlite:///{tmp_path / 'readmodel.sqlite'}"),
        EventDecoder(registry, load_catalog()),
        connect_timeout_s=1.0,
    )
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match=f"Kafka at {bootstrap} does not answer within 1s"):
        runner.run(threading.Event())
    assert time.monotonic() - started < 5.0
    registry.close()
