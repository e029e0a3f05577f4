"""The local broker launcher: idempotent start and stop, and clear failures."""

from __future__ import annotations

import os
import socket

import pytest

from bus.errors import LocalKafkaError
from govbus.local_kafka import LocalKafka, metadata_answers

pytestmark = pytest.mark.integration


def test_up_is_idempotent_and_down_leaves_no_process(private_broker: LocalKafka) -> None:
    """A second up reuses the running broker; down stops exactly that process."""
    assert private_broker.up() is True
    state = private_broker.status()
    assert state.running
    assert state.serving
    assert state.pid is not None
    assert private_broker.up() is False
    assert private_broker.status().pid == state.pid
    assert private_broker.down() is True
    with pytest.raises(ProcessLookupError):
        os.kill(state.pid, 0)
    assert not metadata_answers(private_broker.bootstrap, timeout_s=1.0)
    assert private_broker.down() is False


def test_port_held_by_another_program_is_refused(private_broker: LocalKafka) -> None:
    """When something else listens on the broker port, up fails naming the port and starts nothing."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", private_broker.port))
        squatter.listen()
        with pytest.raises(LocalKafkaError, match=f"port {private_broker.port}"):
            private_broker.up()
    assert not private_broker.pid_file.exists()


def test_broker_dying_at_start_reports_its_log(private_broker: LocalKafka) -> None:
    """A broker that exits while starting raises with the tail of its logs."""
    private_broker.up()
    private_broker.down()
    meta = private_broker.data / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))
    with pytest.raises(LocalKafkaError, match="exited while starting") as info:
        private_broker.up(timeout_s=60)
    assert "server.log" in info.value.log_tail or "kafka.out" in info.value.log_tail


def test_a_broker_on_other_ports_is_never_taken_for_this_one(private_broker: LocalKafka) -> None:
    """A broker's ports are recorded; asking its home for other ports names both and stops nothing."""
    private_broker.up()
    assert private_broker.recorded_port() == private_broker.port
    other = LocalKafka(private_broker.home, port=private_broker.port + 100)

    state = other.status()
    assert (state.running, state.serving, state.other_port) == (False, False, private_broker.port)
    assert state.pid == private_broker.status().pid
    with pytest.raises(LocalKafkaError, match=f"runs on 127.0.0.1:{private_broker.port}") as up_error:
        other.up()
    assert other.bootstrap in str(up_error.value)
    with pytest.raises(LocalKafkaError, match=f"runs on 127.0.0.1:{private_broker.port}"):
        other.down()

    assert private_broker.status().serving
    assert private_broker.down() is True
    assert private_broker.recorded_port() is None
