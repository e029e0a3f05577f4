"""``govbus gateway``: serve the registry, read-model and health APIs over HTTP."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from bus.errors import ConfigurationError
from bus.settings import Settings
from govbus.bootstrap import build_gateway
from govbus.local_kafka import metadata_answers

BROKER_TIMEOUT_S = 10.0


def register(commands: Any) -> None:
    """Add the ``gateway`` command."""
    parser = commands.add_parser("gateway", help="serve the HTTP gateway (registry, read models)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted; exit 1 at once when Kafka (which holds the registry) does not answer."""
    if not metadata_answers(settings.kafka_bootstrap, timeout_s=BROKER_TIMEOUT_S):
        raise ConfigurationError(
            f"Kafka at {settings.kafka_bootstrap} does not answer; the gateway keeps its schema registry "
            "there (start a local broker with `govbus kafka up`, or set GOVBUS_KAFKA_BOOTSTRAP)"
        )

    uvicorn.run(build_gateway(settings), host=args.host, port=args.port, log_config=None, access_log=False)
    return 0
