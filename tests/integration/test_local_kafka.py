"""The local broker launcher: idempotent start and stop, and clear failures."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.errors import LocalKafkaError
from bus.local_kafka import LocalKafka, metadata_answers
from tests.conftest import ROOT
from tests.support import free_port

pytestmark = pytest.mark.integration


def _two_free_ports() -> int:
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A local broker in a temporary home sharing the fetched jars; always stopped afterwards."""
    kafka = LocalKafka(tmp_path / "kafka", port=_two_free_ports())
    kafka.home.mkdir(parents=True)
    shared_libs = ROOT / ".govbus" / "kafka" / "libs"
    if shared_libs.exists():
        kafka.libs.symlink_to(shared_libs, target_is_directory=True)
    yield kafka
    kafka.down()


def test_up_is_idempotent_and_down_leaves_no_process(broker: LocalKafka) -> None:
    """A second up reuses the running broker; down stops exactly that process."""
    assert broker.up() is True
    state = broker.status()
    assert state.running
    assert state.serving
    assert state.pid is not None
    assert broker.up() is False
    assert broker.status().pid == state.pid
    assert broker.down() is True
    with pytest.raises(ProcessLookupError):
        os.kill(state.pid, 0)
    assert not metadata_answers(broker.bootstrap, timeout_s=1.0)
    assert broker.down() is False


def test_port_held_by_another_program_is_refused(broker: LocalKafka) -> None:
    """When something else listens on the broker port, up fails naming the port and starts nothing."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", broker.port))
        squatter.listen()
        with pytest.raises(LocalKafkaError, match=f"port {broker.port}"):
            broker.up()
    assert not broker.pid_file.exists()


def test_broker_dying_at_start_reports_its_log(broker: LocalKafka) -> None:
    """A broker that exits while starting raises with the tail of its logs."""
    broker.up()
    broker.down()
    meta = broker.data / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))
    with pytest.raises(LocalKafkaError, match="exited while starting") as info:
        broker.up(timeout_s=60)
    assert "server.log" in info.value.log_tail or "kafka.out" in info.value.log_tail
