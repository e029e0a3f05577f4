"""``/readyz`` follows Kafka: 503 naming the registry while the broker is down, 200 once it is back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from bus.settings import Settings
from gateway.server import serve_in_thread
from govbus.bootstrap import build_gateway
from govbus.local_kafka import LocalKafka
from tests.support import bearer, dev_identities

pytestmark = pytest.mark.integration


def _until(client: httpx.Client, status: int, timeout_s: float) -> httpx.Response:
    """GET /readyz until it answers ``status`` or the timeout passes; the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get("/readyz")
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_readyz_turns_503_when_kafka_stops_and_200_when_it_is_back(
    private_broker: LocalKafka, tmp_path: Path
) -> None:
    """Ready on a live broker; while it is stopped, 503 naming the registry, and an unknown id 503 50002."""
    private_broker.up()
    settings = Settings(
        kafka_bootstrap=private_broker.bootstrap,
        readmodel_url=f"sqlite:///{tmp_path / 'rm.sqlite'}",
        home=tmp_path / "home",
    )
    _, credentials = dev_identities(settings.home)
    with (
        capture_logs(),
        serve_in_thread(build_gateway(settings)) as base,
        httpx.Client(base_url=base, timeout=30, headers=bearer(credentials["ministry-of-welfare"])) as client,
    ):
        ready = _until(client, 200, 30)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "checks": {"registry": "ok", "store": "ok"}}
        private_broker.down()
        began = time.monotonic()
        down = client.get("/readyz")
        assert down.status_code == 503, down.text
        assert time.monotonic() - began < 10
        assert down.headers["content-type"].startswith("application/problem+json")
        assert down.json()["checks"]["store"] == "ok"
        assert down.json()["checks"]["registry"] != "ok"
        assert client.get("/healthz").status_code == 200
        began = time.monotonic()
        unknown = client.get("/registry/schemas/ids/999999")
        assert (unknown.status_code, unknown.json()["error_code"]) == (503, 50002), unknown.text
        assert time.monotonic() - began < 10
        private_broker.up()
        back = _until(client, 200, 60)
        assert back.status_code == 200, back.text
