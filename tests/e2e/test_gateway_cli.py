"""``govbus gateway`` as an operator starts it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.server import free_port

pytestmark = pytest.mark.e2e


def test_gateway_without_kafka_exits_1_with_a_message() -> None:
    """With no broker at the bootstrap address the gateway refuses to start, says why and exits 1."""
    env = {**os.environ, "GOVBUS_KAFKA_BOOTSTRAP": "127.0.0.1:9", "GOVBUS_LOG_LEVEL": "warning"}
    result = subprocess.run(
        [sys.executable, "-m", "govbus", "gateway", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Kafka at 127.0.0.1:9 does not answer" in result.stderr
    assert "Traceback" not in result.stderr
