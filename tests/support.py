"""Helpers shared by integration and e2e tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.decoder import EventDecoder
from consumers.projections.localgov import ResidentsModel
from consumers.runtime import ReadModelRunner
from consumers.stores import open_store
from gateway.identities import FILE_NAME, Identities
from gateway.server import free_port, serve_in_thread
from govbus.dev_identities import ensure_dev_identities
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient

__all__ = [
    "bearer",
    "cli_env",
    "dev_identities",
    "free_port",
    "residents_adapter",
    "serve_in_thread",
    "wait_for",
]

T = TypeVar("T")


def dev_identities(home: Path) -> tuple[Identities, dict[str, str]]:
    """The development identities of ``home`` (created when missing) and each organisation's KEY:SECRET."""
    credentials = ensure_dev_identities(Settings(home=home))
    return Identities(home / FILE_NAME), credentials


def bearer(credential: str) -> dict[str, str]:
    """The Authorization header presenting ``credential``."""
    return {"Authorization": f"Bearer {credential}"}


def wait_for(condition: Callable[[], T | None], timeout_s: float = 30.0, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def cli_env(settings: Settings, gateway_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``govbus`` command in a test: the test's broker, registry, store and prefix."""
    return {
        "GOVBUS_HOME": str(settings.home),
        "GOVBUS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GOVBUS_REGISTRY_URL": f"{gateway_url}/registry",
        "GOVBUS_READMODEL_URL": settings.readmodel_url,
        "GOVBUS_TOPIC_PREFIX": settings.topic_prefix,
        "GOVBUS_LOG_LEVEL": "warning",
        **extra,
    }


@contextmanager
def residents_adapter(settings: Settings, registry: RegistryClient) -> Iterator[ReadModelRunner]:
    """The residents adapter running in a background thread (its topics created) until the block ends."""
    connection = KafkaConnection(settings.kafka_bootstrap)
    ensure_topics(connection, [f"{settings.topic_prefix}{t}" for t in ("localgov.resident", "residents.dlq")])
    runner = ReadModelRunner(
        connection,
        ResidentsModel(),
        open_store(settings.effective_readmodel_url),
        EventDecoder(registry, load_catalog()),
        topic_prefix=settings.topic_prefix,
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        stop.set()
        thread.join(timeout=30)
