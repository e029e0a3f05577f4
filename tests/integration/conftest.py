"""Integration fixtures beyond Kafka: a real PostgreSQL server for the session (see ``tests/pg.py``)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.pg import PostgresServer, PostgresUnavailableError, create_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the ``postgres`` database on a throwaway PostgreSQL server started for this session."""
    try:
        server = PostgresServer()
    except PostgresUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except PostgresUnavailableError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_url: str, unique_name: str) -> str:
    """URL of a fresh, empty database of this test's own on the session's PostgreSQL server."""
    return create_database(postgres_url, f"t{unique_name}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts (it appends them); any still running at its end is SIGKILLed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
