"""``govbus gateway``: serve the registry, read-model and health APIs over HTTP."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from bus.settings import Settings


def register(commands: Any) -> None:
    """Add the ``gateway`` command."""
    parser = commands.add_parser("gateway", help="serve the HTTP gateway (registry, read models)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted."""
    from gateway.app import create_app  # noqa: PLC0415 - the web stack loads only for this command

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False)
    return 0
